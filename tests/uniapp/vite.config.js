// uni-app's default: nothing but the uni plugin. open-sse-channel needs no setting here.
import { defineConfig } from 'vite';
import uni from '@dcloudio/vite-plugin-uni';

export default defineConfig({
  plugins: [uni()],
});
