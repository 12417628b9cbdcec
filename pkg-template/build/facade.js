// ---- open-sse-channel facade (pkg-template/build/facade.js; see docs/loading.md) -----------------------
// What the browser entries (index.js, slim.js) add in JavaScript on top of wasm-bindgen's class, where
// a wasm export would cost a shim in the wasm and glue in JS for what is only a different name or a
// few property checks. Appended to the glue by assemble.mjs, so `SSEChannel` here is wasm-bindgen's
// class, and `sseError(code, message)` (a coded SSEChannelError) is the wasm's own snippet
// (src/js_error.rs), inlined into the glue. Written for ES2019 (uni-app's default build target).

// Node.js EventEmitter's and uniCloud's spellings of `on`, `off` and `removeAllListeners`.
SSEChannel.prototype.addListener = SSEChannel.prototype.on;
SSEChannel.prototype.removeListener = SSEChannel.prototype.off;
SSEChannel.prototype.removeAllListener = SSEChannel.prototype.removeAllListeners;

/**
 * `installUniCloud(uniCloud, options)`: sets `uniCloud.SSEChannel`, with the `SSEChannel` options
 * among `options` (`relay`, `transport`, `reconnect`, …) as its defaults, and returns `uniCloud`.
 * Throws `INVALID_OPTIONS` when `uniCloud` is not an object or an option is invalid, and
 * `UNICLOUD_INSTALL_FAILED` when the property does not take effect (a frozen `uniCloud`, a
 * read-only property); either way it changes nothing. (The Node build's `installUniCloud`, in
 * src/unicloud.rs, installs `deserializeSSEChannel` instead.)
 */
let __sseExported = SSEChannel; // in index.js, the loader's class that wraps this one
export function installUniCloud(uniCloud, options) {
  const SSEChannel = __sseExported;
  const where = 'installUniCloud(uniCloud, options): ';
  if (uniCloud === null || (typeof uniCloud !== 'object' && typeof uniCloud !== 'function')) {
    throw sseError('INVALID_OPTIONS', `${where}uniCloud must be the uniCloud object`);
  }
  if (options == null) options = {};
  else if (typeof options !== 'object') throw sseError('INVALID_OPTIONS', `${where}options must be an object`);
  // Checked before anything is set, as `configure` would: a construction merges the options over
  // the defaults and throws INVALID_OPTIONS (it opens nothing). (While index.js compiles the wasm
  // asynchronously, on Chromium before 114, construction hands out a stand-in and `configure`
  // waits for the module: an invalid option is then reported once it is loaded.)
  new SSEChannel(options).free();
  if (!Reflect.set(uniCloud, 'SSEChannel', SSEChannel) || uniCloud.SSEChannel !== SSEChannel) {
    throw sseError(
      'UNICLOUD_INSTALL_FAILED',
      'installUniCloud: uniCloud.SSEChannel could not be set (the object is frozen or the property read-only)',
    );
  }
  SSEChannel.configure(options);
  return uniCloud;
}
// ---- end of the facade -----------------------------------------------------------------------------
