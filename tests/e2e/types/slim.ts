// The slim entry: wasm-bindgen's web build, with its init function.
import init, { SSEChannel, deserializeSSEChannel } from 'open-sse-channel/slim';

export async function run(): Promise<void> {
  await init();
  new SSEChannel({ relay: 'https://relay.example.com' });
}

/** Type-checks with the Node signature; throws UNSUPPORTED_ENVIRONMENT if called in a browser. */
export const shared: typeof deserializeSSEChannel = deserializeSSEChannel;
