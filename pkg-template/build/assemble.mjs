// Assembles the npm package from wasm-bindgen's output. Called by scripts/build-pkg.sh; not shipped.
//
//   node pkg-template/build/assemble.mjs <stage> <out> [--loading eager|lazy|async] [--cargo-version V]
//
// <stage> holds three wasm-bindgen runs: two over the browser build (features `browser`) and one over
// the Node build (features `writer`):
//   web/     --target web                             -> slim.js (loads sse_channel_bg.wasm by URL)
//   inline/  --target web --omit-default-module-path  -> index.js (the wasm inlined, no URL at all)
//   node/    --target nodejs                          -> node.cjs (reads sse_channel_node_bg.wasm with fs)
// and the wasm-opt'ed sse_channel_bg.wasm (browser) and sse_channel_node_bg.wasm (Node).
// Each entry also gets the other side's name as a JS stub that throws UNSUPPORTED_ENVIRONMENT
// (STUBS below), so that code shared by both sides (server-side rendering) imports everywhere.
// See docs/loading.md for why index.js looks the way it does.
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// esbuild from the workspace's tools (package.json at the repository root; scripts/setup.sh installs it).
const esbuild = createRequire(join(here, '../../package.json'))('esbuild');
const template = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const loading = opt('--loading', 'lazy');
const version = opt('--cargo-version', '0.0.0');
const [stage, out] = args;
if (!stage || !out) throw new Error('usage: assemble.mjs <stage> <out> [--loading eager|lazy|async]');
if (!['eager', 'lazy', 'async'].includes(loading)) throw new Error(`unknown --loading ${loading}`);

/**
 * The browser wasm's import, export and module names were shortened by wasm-opt
 * (--minify-imports-and-exports-and-modules, map in wasm-names.json): the same renames in its glue.
 */
const names = JSON.parse(readFileSync(join(stage, 'wasm-names.json'), 'utf8'));
const escapeRe = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** wasm-bindgen's `inline_js` snippets: modules of their own beside the glue (`./snippets/…`). */
const isSnippet = (m) => m.startsWith('./snippets/');
/**
 * A snippet function the wasm imports directly (one that takes and returns JS values as they are,
 * e.g. `sseDispatch` in src/transport/reader.js, so wasm-bindgen writes no shim for it): the glue
 * gives it its own import module (`import * as importN from "./snippets/…"`). The wasm imports
 * from one module once minified, so the function joins the glue's own import object (`import0`)
 * under its shortened name, and its name joins the glue's named import of that file, which
 * inlineSnippets (below) replaces by the file's code.
 */
function directSnippets(src, what) {
  const direct = names.imports.filter(([m]) => isSnippet(m));
  src = src.replace(/^import \* as (import\d+) from "(\.\/snippets\/[\w./-]+)"\n/gm, (_m, ns, path) => {
    const fns = direct.filter(([m]) => m === path).map(([, base]) => base);
    if (!fns.length) throw new Error(`assemble: ${what} imports ${path} as a module, but the wasm imports nothing from it`);
    return `// ${ns} ${path} ${fns.join(', ')}\n`;
  });
  for (const [, ns, path, fns] of [...src.matchAll(/^\/\/ (import\d+) (\S+) (.*)\n/gm)]) {
    src = replaceOnce(src, `        ${JSON.stringify(path)}: ${ns},\n`, '', what);
    src = src.replace(`// ${ns} ${path} ${fns}\n`, '');
    const named = new RegExp(`^import \\{ ([\\w$]+(?:, [\\w$]+)*) \\} from '${escapeRe(path)}';$`, 'm');
    src = named.test(src)
      ? src.replace(named, (_m, have) => `import { ${have}, ${fns} } from '${path}';`)
      : src.replace(/^(\/\* @ts-self-types="[^"]*" \*\/\n)?/, (head) => `${head}import { ${fns} } from '${path}';\n`);
  }
  const entries = direct.map(([, base, short]) => `        ${JSON.stringify(short)}: ${base},\n`).join('');
  return replaceOnce(src, '    const import0 = {\n        __proto__: null,\n', `    const import0 = {\n        __proto__: null,\n${entries}`, what);
}
function renameWasmNames(src, what) {
  const oldModules = [...new Set(names.imports.map(([m]) => m).filter((m) => !isSnippet(m)))];
  const newModules = [...new Set(WebAssembly.Module.imports(browserWasm).map((i) => i.module))];
  if (oldModules.length !== 1 || newModules.length !== 1) {
    throw new Error(`assemble: expected one import module, got ${oldModules} / ${newModules}`);
  }
  src = replaceOnce(src, `${JSON.stringify(oldModules[0])}: import0`, `${JSON.stringify(newModules[0])}: import0`, what);
  for (const [m, base, short] of names.imports) {
    if (isSnippet(m)) continue; // added by inlineSnippets under its short name
    src = src.replace(new RegExp(`(^|[\\s,{])${escapeRe(base)}(?=: function)`, 'm'), (_m, pre) => `${pre}${JSON.stringify(short)}`);
  }
  for (const [old, short] of names.exports) {
    src = src.replace(new RegExp(`\\bwasm\\.${escapeRe(old)}\\b`, 'g'), `wasm[${JSON.stringify(short)}]`);
  }
  for (const [m, base] of names.imports) {
    if (!isSnippet(m) && src.includes(base)) throw new Error(`assemble: ${what} still names the import ${base}`);
  }
  for (const [old] of names.exports) {
    if (new RegExp(`\\bwasm\\.${escapeRe(old)}\\b`).test(src)) throw new Error(`assemble: ${what} still names the export ${old}`);
  }
  return src;
}
const browserWasm = new WebAssembly.Module(readFileSync(join(stage, 'sse_channel_bg.wasm')));
const read = (p) => readFileSync(join(stage, p), 'utf8');
// wasm-bindgen declares `[Symbol.dispose](): void`, which needs TypeScript's esnext.disposable lib:
// projects with an es20xx `lib` and `skipLibCheck: false` would fail to type-check. The method stays
// at run time; `free()` is the typed way to release an object early.
// The raw exports' declarations go with their glue (cutRawExports, below).
const readTypes = (p) => read(p).replace(/^\s*\[Symbol\.dispose\]\(\): void;\n/gm, '').replace(/^export function (?:sse|start)\(.*\n/gm, '');
/** What each entry exports (JS and typings alike); the build fails on any difference. */
const EXPECTED_EXPORTS = {
  web: ['SSEChannel', 'installUniCloud', 'deserializeSSEChannel'],
  node: ['SSEChannel', 'SSEChannelWriter', 'deserializeSSEChannel', 'installUniCloud'],
};
/**
 * Of those, the other side's names: small JS stubs added here (no wasm) that throw
 * UNSUPPORTED_ENVIRONMENT, so that code shared by both sides (server-side rendering: Node resolves
 * `open-sse-channel` to node.cjs) imports without a missing export. The wasm builds must not have them.
 */
const STUBS = { web: ['deserializeSSEChannel'], node: ['SSEChannel'] };
const without = (names, drop) => names.filter((n) => !drop.includes(n));
const UNSUPPORTED = 'UNSUPPORTED_ENVIRONMENT';
// The code is the protocol crate's (ErrorCode::UnsupportedEnvironment); fail if it is renamed there.
if (!readFileSync(join(template, '../crates/protocol/src/error.rs'), 'utf8').includes(`= "${UNSUPPORTED}"`)) {
  throw new Error(`assemble: ${UNSUPPORTED} is not an ErrorCode in crates/protocol/src/error.rs`);
}
const MSG_NODE =
  "open-sse-channel: SSEChannel runs in browsers; this is the package's Node.js entry, which provides " +
  'deserializeSSEChannel (for cloud functions). Construct SSEChannel on the client only (e.g. in onMounted).';
const MSG_WEB =
  "open-sse-channel: deserializeSSEChannel runs in Node.js (in the cloud function); this is the package's " +
  'browser entry, which provides SSEChannel.';
/** The JS of a function that throws a coded SSEChannelError (name, message, code), as the wasm's errors are. */
const thrower = (fn, message, exported = false) =>
  `${exported ? 'export ' : ''}function ${fn}() {\n  const e = new Error(${JSON.stringify(message)});\n  e.name = 'SSEChannelError';\n` +
  `  e.code = ${JSON.stringify(UNSUPPORTED)};\n  throw e;\n}\n`;
// Node: a class whose constructor and configure() throw (instanceof works, nothing else is reachable).
const NODE_STUB =
  `\n// ---- SSEChannel runs in browsers (added by assemble.mjs: importable in Node, throws when used) ----\n` +
  thrower('__sseUnsupported', MSG_NODE) +
  'class SSEChannel {\n  constructor() {\n    __sseUnsupported();\n  }\n  static configure() {\n    __sseUnsupported();\n  }\n}\n' +
  'exports.SSEChannel = SSEChannel;\n';
// Browser entries: deserializeSSEChannel throws.
const WEB_STUB =
  `\n// ---- deserializeSSEChannel runs in Node.js (added by assemble.mjs: importable, throws when called) ----\n` +
  thrower('deserializeSSEChannel', MSG_WEB, true);
/** Declared by both builds' typings; they must stay identical (src/channel/mod.rs, src/lib.rs). */
const SHARED_TYPES = ['SSEChannelError', 'SSEChannelDescriptor'];
const sameSet = (a, b) => [...a].sort().join() === [...b].sort().join();
function checkExports(what, actual, expected) {
  if (!sameSet(actual, expected)) {
    throw new Error(`assemble: ${what} exports ${[...actual].sort().join(', ')}; expected ${[...expected].sort().join(', ')}`);
  }
}
/** Names of the classes and functions a .d.ts declares. */
const typedValues = (dts) => [...dts.matchAll(/^export (?:declare )?(?:class|function) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);
/**
 * The declaration of `name` in a .d.ts with its doc comment: `export interface|class X { … }` (to the
 * closing `}` line) or `export type|function X …;` (one line).
 */
function declaration(dts, name, what) {
  const m = dts.match(
    new RegExp(`^(?:/\\*\\*(?:(?!\\*/)[^])*\\*/\\n)?export (?:declare )?(?:(?:interface|class) ${name}\\b[^]*?^}|(?:type|function) ${name}\\b.*;)$`, 'm'),
  );
  if (!m) throw new Error(`assemble: no declaration of ${name} in the ${what} typings`);
  return m[0];
}
/** A declaration (from `declaration`) with its doc comment replaced by `doc` (lines without ` * `). */
function withDoc(decl, doc) {
  if (!decl.startsWith('/**')) throw new Error(`assemble: no doc comment to replace in "${decl.split('\n')[0]}"`);
  return `/**\n${doc.map((l) => ` *${l && ' '}${l}\n`).join('')} */\n${decl.slice(decl.indexOf('*/\n') + 3)}`;
}
/** The text of `export interface <name> { … }` in a .d.ts. */
function interfaceText(dts, name, what) {
  const m = dts.match(new RegExp(`^export interface ${name}\\b[^]*?^}$`, 'm'));
  if (!m) throw new Error(`assemble: no interface ${name} in the ${what} typings`);
  return m[0];
}

/** Replace exactly one occurrence, or fail loudly: the glue is pinned to one wasm-bindgen version. */
function replaceOnce(src, from, to, what) {
  const n = src.split(from).length - 1;
  if (n !== 1) throw new Error(`assemble: expected one "${from}" in ${what}, found ${n} (wasm-bindgen changed?)`);
  return src.replace(from, () => to);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// Both builds' typings first: each entry's typings declare the other side's stub with its real
// signature (copied from the other build's typings), so code shared by both sides type-checks.
const slimTypesRaw = readTypes('web/sse_channel.d.ts');
const nodeTypesRaw = readTypes('node/sse_channel.d.ts');
for (const name of SHARED_TYPES) {
  if (interfaceText(slimTypesRaw, name, 'web') !== interfaceText(nodeTypesRaw, name, 'Node')) {
    throw new Error(`assemble: interface ${name} differs between the web and the Node typings`);
  }
}
for (const [what, dts, stubs] of [['web', slimTypesRaw, STUBS.web], ['Node', nodeTypesRaw, STUBS.node]]) {
  for (const n of stubs) {
    if (new RegExp(`^export (?:declare )?(?:class|function) ${n}\\b`, 'm').test(dts)) {
      throw new Error(`assemble: the ${what} build has ${n}, which this script adds as a stub`);
    }
  }
}
const THROWS = (where) => `@throws {SSEChannelError} always ${where}, with code \`${UNSUPPORTED}\`.`;
/** Adds `@throws` (always, in `where`) to the doc comment of the one declaration whose line starts with `head`. */
function withThrows(dts, head, where) {
  const text = `\n${dts}`;
  const at = text.indexOf(`\n${head}`); // its index in dts
  if (at < 0 || text.indexOf(`\n${head}`, at + 1) >= 0) throw new Error(`assemble: expected one line "${head}…" in the typings`);
  const indent = head.match(/^ */)[0];
  const doc = dts.slice(0, at).match(/ *\/\*\* (.*) \*\/\n$/); // a one-line doc comment right above, if any
  if (!doc && dts.slice(0, at).endsWith('*/\n')) throw new Error(`assemble: "${head}…" has a doc comment this script cannot extend`);
  const start = doc ? at - doc[0].length : at;
  const lines = [...(doc ? [doc[1], ''] : []), THROWS(where)];
  return `${dts.slice(0, start)}${indent}/**\n${lines.map((l) => `${indent} *${l && ' '}${l}\n`).join('')}${indent} */\n${dts.slice(at)}`;
}
// Node typings: SSEChannel with the browser's signature, documented as throwing.
const nodeExtraTypes = [
  ...['SSEChannelState', 'SSEChannelOptions', 'SSESubscription', 'SSEChannelEvents'].map((n) => declaration(slimTypesRaw, n, 'web')),
  withThrows(
    withThrows(
      withDoc(declaration(slimTypesRaw, 'SSEChannel', 'web'), [
        'Browser only: in Node.js (this entry) `new SSEChannel()` and `SSEChannel.configure()` throw an',
        `\`SSEChannelError\` with code \`${UNSUPPORTED}\`; use \`deserializeSSEChannel\` here. Exported`,
        "with the browser's signatures so that code shared with the browser (server-side rendering)",
        'imports and type-checks: construct the channel on the client only (e.g. in `onMounted`).',
      ]),
      '    constructor(',
      'in Node.js',
    ),
    '    static configure(',
    'in Node.js',
  ),
].join('\n\n');
// Browser typings: deserializeSSEChannel with the Node signature (its writer as a type only).
const webExtraTypes = [
  declaration(nodeTypesRaw, 'SSEChannelWriterOptions', 'Node'),
  replaceOnce(
    replaceOnce(declaration(nodeTypesRaw, 'SSEChannelWriter', 'Node'), 'export class SSEChannelWriter {', 'export interface SSEChannelWriter {', 'SSEChannelWriter typings'),
    '    private constructor();\n',
    '',
    'SSEChannelWriter typings',
  ),
  withDoc(declaration(nodeTypesRaw, 'deserializeSSEChannel', 'Node'), [
    "Node.js only (the cloud function's side): exported here with the Node.js signature so that code",
    'shared with Node.js bundles and type-checks; call it in the cloud function.',
    '',
    THROWS('in a browser (this entry)'),
  ]),
].join('\n\n');
const EXTRA_HEAD = '\n\n// ---- the other side\'s export: importable here, throws when used (see the package README) ----\n\n';

// Both browser entries are minified with esbuild (whitespace, syntax and local names; ES2019 output
// for uni-app's default build target). The class's own members (src/channel.js: `_name`) get short
// names too; nothing outside the file reads them.
// `import.meta` (slim.js's URL of the .wasm, ES2020) is left as it is: esbuild would otherwise replace
// it by an empty object for an ES2019 target.
const minify = (code, treeShaking = true) =>
  esbuild.transformSync(code, { minify: true, format: 'esm', target: 'es2019', supported: { 'import-meta': true }, legalComments: 'none', treeShaking, mangleProps: /^_[a-z]/ }).code;
/** The names a minified module exports (its `export { a as B, … }` statements). */
const minifiedExports = (src) => [...src.matchAll(/export\s*\{([^}]*)\}/g)].flatMap((m) => m[1].split(',').map((e) => e.trim().split(/\s+as\s+/).pop()));
// --- slim.js: the plain --target web glue; the user calls `await init()` -------------------------
const SELF_TYPES = '/* @ts-self-types="./sse_channel.d.ts" */';
// Both browser entries: the glue plus facade.js (the listener aliases and installUniCloud, in JS
// instead of wasm exports: each export costs a shim in the wasm and glue here).
const facade = readFileSync(join(here, 'facade.js'), 'utf8');
for (const [what, src] of [['web', read('web/sse_channel.js')], ['inline', read('inline/sse_channel.js')]]) {
  if (/^export (?:function installUniCloud|class SSEChannel)\b/m.test(src)) throw new Error(`assemble: the ${what} glue has installUniCloud or SSEChannel, which facade.js and src/channel.js add`);
}
const withFacade = (glue) => `${glue.trimEnd()}\n\n${facade}`;
/**
 * The browser wasm's exports that only src/channel.js calls (`sse`, through the exports object it is
 * handed at instantiation) and its start function: wasm-bindgen writes a JS function for each, which
 * no page calls. Cut from the glue (and their declarations from the typings).
 */
const RAW_EXPORTS = ['sse', 'start'];
function cutRawExports(src, what) {
  for (const name of RAW_EXPORTS) {
    src = replaceOnce(
      src,
      src.match(new RegExp(`^(?:/\\*\\*(?:(?!\\*/)[^])*\\*/\n)?export function ${name}\\([^)]*\\) \\{\n[^]*?\n\\}\n`, 'm'))?.[0] ?? `export function ${name}(`,
      '',
      what,
    );
  }
  return src;
}
/**
 * The glue's import object keeps only what the optimized wasm imports (wasm-opt drops imports that
 * became dead, e.g. wasm-bindgen's `throw`, whose glue would pull in its string decoding).
 */
function cutDeadImports(src) {
  const kept = new Set(names.imports.map(([, base]) => base));
  return src.replace(/^        (__wbg[\w$]*|__wbindgen[\w$]*): function\([^)]*\) \{\n[^]*?\n        \},\n/gm, (m, base) => (kept.has(base) ? m : ''));
}
/**
 * The wasm's JavaScript modules (`#[wasm_bindgen(module = "/src/…")]`: src/channel.js, the class,
 * with what it imports, src/browser.js and src/transport/reader.js), which wasm-bindgen writes as
 * files under snippets/ and imports: inlined, each once, so that each browser entry stays one file
 * with no import. The class stays exported; the wasm's exports that src/channel.js calls through
 * `sseW` get their shortened names.
 */
/**
 * The numbers of the wasm's export that src/browser.js names (`const SSE_OP_NEW = 0;`, …; Rust:
 * src/machine/abi.rs): each name replaced by its value and its declaration dropped. esbuild writes a
 * `const`'s value in place only when the const comes before any other statement, which these do
 * not (measured: index.js 194 bytes gzip -9 larger with the names left to esbuild). Returns the
 * function that does it to a module's code.
 */
function abiNumbers(src) {
  const values = new Map();
  for (const m of src.matchAll(/^const (SSE_(?:OPT|OP|IN|FX)_[A-Z_]+) = (\d+);$/gm)) values.set(m[1], m[2]);
  return (code, what) =>
    code.replace(/^const SSE_(?:OPT|OP|IN|FX)_[A-Z_]+ = \d+;\n/gm, '').replace(/\bSSE_(?:OPT|OP|IN|FX)_[A-Z_]+\b/g, (name) => {
      if (!values.has(name)) throw new Error(`assemble: the ${what} uses ${name}, which src/browser.js does not define`);
      return values.get(name);
    });
}
/** The code of the modules inlined into each glue (for the size breakdown). */
const inlinedJs = { web: [], inline: [] };
function inlineSnippets(src, dir, what) {
  const done = new Set();
  const inline = (path, names) => {
    const file = join(stage, dir, path);
    let code = readFileSync(file, 'utf8').replace(/^export (?=function |const |let |class (?!SSEChannel\b))/gm, '');
    for (const n of names) {
      if (!new RegExp(`^(?:export )?(?:function|const|let|class) ${escapeRe(n)}\\b`, 'm').test(code)) throw new Error(`assemble: ${path} does not define ${n}`);
    }
    if (done.has(file)) return '';
    done.add(file);
    // What it imports from the files beside it, inlined before it.
    code = code.replace(/^import \{ ([\w$]+(?:, [\w$]+)*) \} from '(\.\.?\/[\w./-]+)';\n/gm, (_m, ns, rel) => inline(join(dirname(path), rel), ns.split(', ')));
    const text = `// ---- ${path.replace(/^.*snippets\/[^/]+\//, '')}: JavaScript of the wasm (#[wasm_bindgen(module)]) ----\n${code.trimEnd()}\n`;
    inlinedJs[dir].push(text);
    return text;
  };
  src = src.replace(/^import \{ ([\w$]+(?:, [\w$]+)*) \} from '(\.\/snippets\/[\w./-]+)';\n/gm, (_m, ns, path) => inline(path, ns.split(', ')));
  if (/^import /m.test(src)) throw new Error(`assemble: the ${what} still imports a module (a snippet form this script does not know?)`);
  const renamed = (code) => names.exports.reduce((c, [old, short]) => c.replace(new RegExp(`\\bsseW\\.${escapeRe(old)}\\b`, 'g'), `sseW[${JSON.stringify(short)}]`), code);
  const numbered = abiNumbers(src);
  src = numbered(renamed(src), what);
  inlinedJs[dir] = inlinedJs[dir].map((c) => numbered(renamed(c), what));
  if (!/^export class SSEChannel\b/m.test(src)) throw new Error(`assemble: no class SSEChannel in the ${what} (src/channel.js) for facade.js`);
  if (!/^function sseError\b/m.test(src)) throw new Error(`assemble: the ${what} has no sseError (src/browser.js), which facade.js and loader.js use`);
  return src;
}
/**
 * wasm-bindgen's string decoding (`getStringFromWasm0` and the TextDecoder it keeps), which the glue
 * keeps once no import that used it is left (cutDeadImports): src/channel.js decodes the wasm's few
 * strings itself.
 */
function cutStringDecoding(src, what) {
  if ((src.match(/\bgetStringFromWasm0\b/g) || []).length !== 1) return src;
  const from = src.indexOf('function getStringFromWasm0(');
  const end = src.indexOf('\n}\n', src.indexOf('function decodeText(')) + 3;
  if (from < 0 || end < from) throw new Error(`assemble: the ${what}'s string decoding is not where expected (wasm-bindgen changed?)`);
  src = src.slice(0, from) + src.slice(end);
  if (/\bgetUint8ArrayMemory0\b/.test(src)) throw new Error(`assemble: the ${what} still uses the cut getUint8ArrayMemory0`);
  return replaceOnce(src, '    cachedUint8ArrayMemory0 = null;\n', '', what);
}
const glueOf = (dir, what) => inlineSnippets(renameWasmNames(directSnippets(cutStringDecoding(cutDeadImports(cutRawExports(read(`${dir}/sse_channel.js`), what)), what), what), what), dir, what);
let slim = withFacade(glueOf('web', 'web glue'));
slim = replaceOnce(slim, SELF_TYPES, '/* @ts-self-types="./slim.d.ts" */', 'web glue');
const esmExports = (src) => [...src.matchAll(/^export (?:class|function|const) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);
checkExports('slim.js (wasm-bindgen)', without(esmExports(slim), ['initSync']), without(EXPECTED_EXPORTS.web, STUBS.web));
slim = `${slim.trimEnd()}\n${WEB_STUB}`;
checkExports('slim.js', without(esmExports(slim), ['initSync']), EXPECTED_EXPORTS.web);
// Minified as index.js is (below): every byte of it is downloaded by every page that uses it. The
// class keeps its visible name (`ch.constructor.name`), as index.js's loader keeps it.
const slimMin = `/* @ts-self-types="./slim.d.ts" */\n${minify(`${slim}\nObject.defineProperty(SSEChannel, 'name', { value: 'SSEChannel' });\n`)}`;
checkExports('slim.js (minified)', minifiedExports(slimMin), [...EXPECTED_EXPORTS.web, 'initSync', 'default']);
if (!slimMin.includes('new URL("sse_channel_bg.wasm",import.meta.url)')) throw new Error('assemble: the minified slim.js lost the URL of its .wasm');
writeFileSync(join(out, 'slim.js'), slimMin);
const initAt = slimTypesRaw.indexOf('export type InitInput');
if (initAt < 0) throw new Error('assemble: no InitInput in the web typings (wasm-bindgen changed?)');
const slimTypes = `${slimTypesRaw.slice(0, initAt).trimEnd()}${EXTRA_HEAD}${webExtraTypes}\n\n\n${slimTypesRaw.slice(initAt)}`;
writeFileSync(join(out, 'slim.d.ts'), slimTypes);
copyFileSync(join(stage, 'sse_channel_bg.wasm'), join(out, 'sse_channel_bg.wasm'));
checkExports('slim.d.ts', without(typedValues(slimTypes), ['initSync']), EXPECTED_EXPORTS.web);

// --- node.cjs: the --target nodejs glue (reads ./sse_channel_bg.wasm beside it) -------------------
let node = read('node/sse_channel.js');
node = replaceOnce(node, SELF_TYPES, '/* @ts-self-types="./node.d.cts" */', 'node glue');
// The Node build's own wasm, beside node.cjs (sse_channel_bg.wasm is the browser build's).
node = replaceOnce(node, '`${__dirname}/sse_channel_bg.wasm`', '`${__dirname}/sse_channel_node_bg.wasm`', 'node glue');
const nodeExports = (src) => [...src.matchAll(/^exports\.([A-Za-z_$][\w$]*) = /gm)].map((m) => m[1]);
checkExports('node.cjs (wasm-bindgen)', nodeExports(node), without(EXPECTED_EXPORTS.node, STUBS.node));
node = `${node.trimEnd()}\n${NODE_STUB}`;
writeFileSync(join(out, 'node.cjs'), node);
const nodeTypes = `${nodeTypesRaw.trimEnd()}${EXTRA_HEAD}${nodeExtraTypes}\n`;
writeFileSync(join(out, 'node.d.cts'), nodeTypes);
copyFileSync(join(stage, 'sse_channel_node_bg.wasm'), join(out, 'sse_channel_node_bg.wasm'));
checkExports('node.cjs', nodeExports(node), EXPECTED_EXPORTS.node);
checkExports('node.d.cts', typedValues(nodeTypes), EXPECTED_EXPORTS.node);

// --- index.js: one self-contained ES module, the wasm inlined as base64 ---------------------------
// wasm-bindgen's initSync and async __wbg_init (with __wbg_load, __wbg_init_once): the loader
// instantiates through __wbg_get_imports and __wbg_finalize_init itself, and never takes their URL,
// fetch, streaming or deprecated-argument paths. Cut from index.js; slim.js keeps them.
function cutInit(glue) {
  const from = glue.indexOf('\nasync function __wbg_load(');
  const endLine = 'export { initSync, __wbg_init as default };';
  const to = glue.indexOf(endLine);
  if (from < 0 || to < from || glue.indexOf(endLine, to + 1) >= 0) throw new Error('assemble: the inline glue\'s init functions are not where expected (wasm-bindgen changed?)');
  const cut = glue.slice(from, to);
  const declared = [...cut.matchAll(/^(?:async )?function ([\w$]+)|^let ([\w$]+)/gm)].map((m) => m[1] || m[2]).sort().join();
  if (declared !== '__wbg_init,__wbg_init_once,__wbg_init_promise,__wbg_load,initSync') {
    throw new Error(`assemble: the inline glue's init section declares ${declared} (wasm-bindgen changed?)`);
  }
  for (const name of ['__wbg_get_imports', '__wbg_finalize_init']) {
    if (!new RegExp(`^function ${name}\\(`, 'm').test(glue)) throw new Error(`assemble: no ${name} in the inline glue`);
  }
  return `${glue.slice(0, from)}\n${glue.slice(to + endLine.length)}`;
}
const inlineGlue = cutInit(glueOf('inline', 'inline glue'));
let glue = withFacade(inlineGlue);
glue = glue.replace(SELF_TYPES, '/* @ts-self-types="./index.d.ts" */');
if (/import\.meta|new URL\(/.test(glue)) throw new Error('assemble: inline glue still references a URL');

const classes = [];
const functions = [];
const consts = [];
glue = glue.replace(/^export (class|function|const) ([A-Za-z_$][\w$]*)/gm, (_m, kind, name) => {
  ({ class: classes, function: functions, const: consts })[kind].push(name);
  return `${kind} ${name}`;
});
if (/^export /m.test(glue)) throw new Error('assemble: inline glue has an export form this script does not know');
checkExports('index.js (wasm-bindgen)', [...classes, ...functions, ...consts], without(EXPECTED_EXPORTS.web, STUBS.web));

// The wasm is stored deflated: base64 text gzips poorly (its 6-bit symbols break the byte patterns),
// but base64 of already-compressed bytes costs next to nothing more once gzipped.
// Deflated with Zopfli (an exhaustive DEFLATE encoder; any inflater reads its output): 6% fewer
// bytes than zlib's level 9 for this wasm, paid once per build (a few seconds).
const wasm = readFileSync(join(stage, 'sse_channel_bg.wasm'));
const zopfli = createRequire(join(here, '../../package.json'))('@gfx/zopfli');
const deflated = Buffer.from(await promisify(zopfli.deflate)(wasm, { numiterations: 15 }));
const inflateSrc = readFileSync(join(here, 'inflate.js'), 'utf8');
const inflate = new Function(`${inflateSrc}\nreturn __sseInflate;`)();
if (Buffer.compare(Buffer.from(inflate(deflated, wasm.length)), wasm) !== 0) {
  throw new Error('assemble: inflate.js does not reproduce the wasm');
}
const END_MARK = '// ---- the end of index.js (assemble.mjs puts what follows after everything else) ----\n';
const [loaderHead, loaderEnd] = readFileSync(join(here, 'loader.js'), 'utf8')
  .replaceAll("'__SSE_LOADING__'", JSON.stringify(loading))
  .replace("'__SSE_WASM_LEN__'", String(wasm.length))
  .replace("'__SSE_WASM_B64__'", () => JSON.stringify(deflated.toString('base64')))
  .split(END_MARK);
if (loaderEnd === undefined) throw new Error('assemble: loader.js has no end mark');
const loader = [loaderHead, inflateSrc].join('\n');
// The stub uses the glue's coded-error helper `sseError` (fewer bytes than WEB_STUB's own).
const indexStub = `function deserializeSSEChannel() {\n  throw sseError(${JSON.stringify(UNSUPPORTED)}, ${JSON.stringify(MSG_WEB)});\n}`;
const exportedNames = [
  ...classes.map((n) => `__sse_${n} as ${n}`),
  // Functions are facade.js's (installUniCloud), over the exported class: not wrapped.
  ...functions,
  ...consts,
  ...STUBS.web,
];
const exportsList = [
  ...classes.map((n) => `const __sse_${n} = __sseWrapClass(${n}, ${JSON.stringify(n)});`),
  indexStub,
  `export { ${exportedNames.join(', ')} };`,
];
checkExports('index.js', exportedNames.map((e) => e.split(' as ').pop()), EXPECTED_EXPORTS.web);
// Minified (`minify`, above): every byte of this file is downloaded by every page. The readable
// sources are src/*.js, the wasm-bindgen glue (build/pkg-stage), facade.js, loader.js and inflate.js.
const indexSrc = `${glue.trimEnd()}\n\n${loader.trimEnd()}\n${exportsList.join('\n')}\n${loaderEnd}`;
const indexMin = `/* @ts-self-types="./index.d.ts" */\n${minify(indexSrc)}`;
checkExports('index.js (minified)', minifiedExports(indexMin), EXPECTED_EXPORTS.web);
writeFileSync(join(out, 'index.js'), indexMin);

// Where index.js's bytes go (Node's zlib at level 9, each part alone; printed by `make pkg`,
// recorded in BENCHMARKS.md): the glue, the loader, the DEFLATE decoder, the wasm (deflated,
// base64). Node's zlib makes index.js about 500 bytes larger than GNU `gzip -9`, which the size
// budget (scripts/check-size.sh) uses: the label says which.
const gz = (text) => gzipSync(Buffer.from(text), { level: 9 }).length;
const b64 = deflated.toString('base64');
const parts = {
  // (the modules as inlined: src/channel.js holds the other two)
  'wasm-bindgen glue': minify(inlineGlue.replace(inlinedJs.inline.at(-1), ''), false),
  'src/*.js (the class)': minify(inlinedJs.inline.at(-1).replace(/^export /gm, ''), false),
  'facade.js': minify(facade, false),
  'loader.js': minify(readFileSync(join(here, 'loader.js'), 'utf8').replace("'__SSE_WASM_B64__'", "''").replaceAll("'__SSE_LOADING__'", JSON.stringify(loading)), false),
  'inflate.js': minify(inflateSrc, false),
  'wasm (deflated, base64)': b64,
};
const breakdown = {
  'index.js': { bytes: Buffer.byteLength(indexMin), gzip: gz(indexMin) },
  ...Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, { bytes: Buffer.byteLength(v), gzip: gz(v) }])),
  'wasm (raw)': { bytes: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length },
};
writeFileSync(join(stage, 'size.json'), JSON.stringify(breakdown, null, 2) + '\n');
for (const [k, v] of Object.entries(breakdown)) console.log(`size: ${k.padEnd(24)} ${String(v.bytes).padStart(7)} bytes ${String(v.gzip).padStart(7)} zlib -9 (Node)`);

// index.d.ts: the web typings without the init functions (users never call them), plus the stub's.
let dts = readTypes('inline/sse_channel.d.ts');
const cut = dts.indexOf('export type InitInput');
if (cut < 0) throw new Error('assemble: no InitInput in the web typings (wasm-bindgen changed?)');
dts = `${dts.slice(0, cut).trimEnd()}${EXTRA_HEAD}${webExtraTypes}\n`;
writeFileSync(join(out, 'index.d.ts'), dts);
checkExports('index.d.ts', typedValues(dts), EXPECTED_EXPORTS.web);

// --- package.json, README ------------------------------------------------------------------------
const pkgJson = JSON.parse(readFileSync(join(template, 'package.json'), 'utf8'));
pkgJson.version = version;
writeFileSync(join(out, 'package.json'), JSON.stringify(pkgJson, null, 2) + '\n');
for (const f of ['README.md', 'LICENSE']) {
  if (existsSync(join(template, f))) copyFileSync(join(template, f), join(out, f));
}
// `files` lists exactly what was built (package.json itself is always packed).
const built = readdirSync(out).filter((f) => f !== 'package.json');
if (!sameSet(built, pkgJson.files)) {
  throw new Error(`assemble: package.json "files" is ${pkgJson.files.join(', ')}; built ${built.join(', ')}`);
}
console.log(
  `assembled ${out} (loading=${loading}; classes: ${classes.join(', ') || '-'}; functions: ${functions.join(', ') || '-'}; stubs: ${STUBS.web} in the browser entries, ${STUBS.node} in the Node entry)`,
);
