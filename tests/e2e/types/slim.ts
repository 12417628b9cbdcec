// The slim entry: wasm-bindgen's web build, with its init function.
import init, { SSEChannel } from 'sse-channel/slim';

export async function run(): Promise<void> {
  await init();
  new SSEChannel({ relay: 'https://relay.example.com' });
}
