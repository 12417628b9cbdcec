// ---- open-sse-channel loader (pkg-template/build/loader.js; see docs/loading.md) ----------------------
// The wasm is inlined below, so no bundler has to know about a .wasm file, no URL can break (Vite's
// dev pre-bundling) and there is no top-level await (uni-app's default build target). By default
// ('lazy') nothing happens at import: the first use (`new SSEChannel()`, any function) inflates and
// compiles it synchronously (`initSync`), which every browser allows since Chromium 114. Older
// Chromium refuses synchronous compiles over 4 KB on the main thread (RangeError); the module is
// then compiled asynchronously while classes hand out a stand-in that queues calls until `open()`.
// 'eager' does the same at import, 'async' always compiles asynchronously (measured alternatives).
// Written for ES2019: uni-app's default build target does not lower newer syntax in dependencies.
// It instantiates through the glue's `__wbg_get_imports` and `__wbg_finalize_init`: assemble.mjs
// removes wasm-bindgen's own `initSync` and async `__wbg_init` (with their fetch, streaming and
// deprecation paths, which an inlined module never takes) from index.js. '__SSE_LOADING__' is
// replaced by the loading mode at every use, so the minifier drops the other modes' code.
// `sseError` (a coded SSEChannelError) is the wasm's snippet (src/js_error.rs), in the glue before this.
const __SSE_WASM_LEN = '__SSE_WASM_LEN__';
let __sseReady = false;
let __sseSyncFailed = false;
let __sseAsync = null;
// Calls that must wait for an asynchronously compiled module (static methods, so also
// installUniCloud's `configure`); they run as soon as it is ready, before any stand-in materializes.
let __sseDeferred = [];

function __sseDeflated() {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(__SSE_WASM_B64);
  const bin = atob(__SSE_WASM_B64);
  const deflated = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) deflated[i] = bin.charCodeAt(i);
  return deflated;
}

/** The wasm: compiled in the background if that finished, else its bytes (inflated here, in JS). */
function __sseModuleOrBytes() {
  return __sseCompiled || __sseInflate(__sseDeflated(), __SSE_WASM_LEN);
}

// Soon after import, where the browser can, decompress natively and compile off the main thread,
// so a later first use only instantiates. Any failure (no 'deflate-raw', a CSP without
// 'wasm-unsafe-eval') is left to the synchronous path, which reports it where the user calls.
let __sseCompiled = null;
let __sseWarm = null;
function __sseWarmUp() {
  if (__sseWarm || __sseReady || typeof DecompressionStream !== 'function') return;
  try {
    const stream = new Blob([__sseDeflated()]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    __sseWarm = new Response(stream)
      .arrayBuffer()
      .then((buf) => WebAssembly.compile(buf))
      .then(
        (m) => {
          __sseCompiled = m;
        },
        () => {},
      );
  } catch (e) {
    __sseWarm = null;
  }
}

/** Instantiates synchronously; false if this browser refuses synchronous compiles of this size. */
function __sseInitSync() {
  if (__sseReady) return true;
  if (__sseSyncFailed) return false;
  try {
    let m = __sseModuleOrBytes();
    if (!(m instanceof WebAssembly.Module)) m = new WebAssembly.Module(m);
    __wbg_finalize_init(new WebAssembly.Instance(m, __wbg_get_imports()), m);
    __sseReady = true;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    __sseSyncFailed = true;
    __sseInitAsync();
  }
  return __sseReady;
}

/** Instantiates asynchronously (once); resolves when the exports can be used. */
function __sseInitAsync() {
  if (__sseReady) return Promise.resolve();
  if (!__sseAsync) {
    __sseAsync = Promise.resolve(__sseWarm)
      .then(() => {
        const m = __sseModuleOrBytes();
        // A Module gives its Instance; bytes give both.
        return WebAssembly.instantiate(m, __wbg_get_imports()).then((r) =>
          r instanceof WebAssembly.Instance ? __wbg_finalize_init(r, m) : __wbg_finalize_init(r.instance, r.module),
        );
      })
      .then(
        () => {
          __sseReady = true;
          const deferred = __sseDeferred;
          __sseDeferred = [];
          for (const call of deferred) {
            try {
              call();
            } catch (e) {
              // Where a synchronous call would have thrown: reported, and the others still run.
              setTimeout(() => {
                throw e;
              }, 0);
            }
          }
        },
        (e) => {
          __sseAsync = null;
          throw sseError('INTERNAL', `open-sse-channel: the WebAssembly module failed to load: ${e && e.message}`);
        },
      );
  }
  return __sseAsync;
}

function __sseLoaded() {
  return __sseReady || ('__SSE_LOADING__' !== 'async' && __sseInitSync());
}

/**
 * The exported class: `new X(...)` is a genuine instance of the wasm-bindgen class `Inner` once the
 * wasm is loaded (it shares Inner's prototype, so `instanceof` and subclasses work); before that, a
 * stand-in that queues method calls and materializes at the first `open()` or once loaded.
 */
function __sseWrapClass(Inner, name) {
  function Pending(args) {
    this.__sseArgs = args;
    this.__sseCalls = [];
    this.__sseInner = null;
  }
  Pending.prototype.__sseMaterialize = function () {
    if (!this.__sseInner && __sseReady) {
      this.__sseInner = new Inner(...this.__sseArgs);
      const calls = this.__sseCalls;
      this.__sseCalls = null;
      for (const [method, margs] of calls) {
        if (method === null) this.__sseInner[margs[0]] = margs[1];
        else this.__sseInner[method](...margs);
      }
    }
    return this.__sseInner;
  };
  for (const key of Object.getOwnPropertyNames(Inner.prototype)) {
    if (key === 'constructor') continue;
    const desc = Object.getOwnPropertyDescriptor(Inner.prototype, key);
    if (desc.get || desc.set) {
      Object.defineProperty(Pending.prototype, key, {
        configurable: true,
        get() {
          const inner = this.__sseMaterialize();
          return inner ? inner[key] : undefined;
        },
        set(v) {
          const inner = this.__sseMaterialize();
          if (inner) inner[key] = v;
          else this.__sseCalls.push([null, [key, v]]);
        },
      });
    } else if (typeof desc.value === 'function') {
      Pending.prototype[key] = function (...margs) {
        const inner = this.__sseMaterialize();
        if (inner) return inner[key](...margs);
        if (key === 'open') {
          return __sseInitAsync().then(() => this.__sseMaterialize().open(...margs));
        }
        if (key === 'free') return undefined;
        if (key === 'toJSON') {
          throw sseError('INVALID_STATE', `${name}.toJSON() called before open() resolved`);
        }
        this.__sseCalls.push([key, margs]);
        return this;
      };
    }
  }

  // The shipped index.js is minified: keep the names a page can see (`ch.constructor.name`).
  Object.defineProperty(Inner, 'name', { value: name });
  Object.defineProperty(Pending, 'name', { value: 'Pending' });
  const Outer = function (...args) {
    if (!new.target) throw new TypeError(`Class constructor ${name} cannot be invoked without 'new'`);
    if (__sseLoaded()) return Reflect.construct(Inner, args, new.target);
    if ('__SSE_LOADING__' === 'async' || __sseSyncFailed) __sseInitAsync();
    return new Pending(args);
  };
  Object.defineProperty(Outer, 'name', { value: name });
  for (const key of Object.getOwnPropertyNames(Inner)) {
    if (key === 'prototype' || key === 'length' || key === 'name') continue;
    const desc = Object.getOwnPropertyDescriptor(Inner, key);
    if (typeof desc.value === 'function' && !key.startsWith('__')) {
      // A static method (e.g. `SSEChannel.configure(defaults)`): deferred while compiling.
      const f = desc.value;
      desc.value = function (...args) {
        if (__sseLoaded()) return f.apply(Inner, args);
        __sseDeferred.push(() => f.apply(Inner, args));
        __sseInitAsync();
        return undefined;
      };
    }
    Object.defineProperty(Outer, key, desc);
  }
  Outer.prototype = Inner.prototype;
  Object.defineProperty(Outer, Symbol.hasInstance, {
    value: (x) => x instanceof Inner || x instanceof Pending,
  });
  // facade.js's installUniCloud installs and configures this class, not wasm-bindgen's.
  __sseExported = Outer;
  return Outer;
}

// ---- the end of index.js (assemble.mjs puts what follows after everything else) ----
// The .wasm, deflated (raw DEFLATE), in base64: last, so that gzip codes it apart from the
// JavaScript (gzip -9 of index.js: 16,283 -> 15,779 bytes, measured when it moved here).
const __SSE_WASM_B64 = '__SSE_WASM_B64__';
if ('__SSE_LOADING__' === 'eager') __sseInitSync();
else if ('__SSE_LOADING__' === 'async') __sseInitAsync();
else if (typeof setTimeout === 'function') setTimeout(__sseWarmUp, 0);
// ---- end of the loader -----------------------------------------------------------------------------
