// A component shared by server-side rendering and the browser: it imports SSEChannel at the top and
// constructs it on the client only (as a Vue component would in onMounted). e2e.test.mjs builds it
// with `vite build --ssr ssr.js` (dependencies stay external, as in Nuxt and Vite SSR apps), then
// imports the server bundle in Node: `open-sse-channel` resolves to the Node entry there.
import { SSEChannel, deserializeSSEChannel } from 'open-sse-channel';

/** Server side: renders without touching SSEChannel. */
export function render() {
  return '<div class="progress">waiting</div>';
}

/** Client side only: what onMounted would do. */
export function mounted(relay) {
  return new SSEChannel({ relay });
}

export { deserializeSSEChannel };
