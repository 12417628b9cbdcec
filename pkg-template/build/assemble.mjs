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
// See docs/loading.md for why index.js looks the way it does.
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
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

const read = (p) => readFileSync(join(stage, p), 'utf8');
// wasm-bindgen declares `[Symbol.dispose](): void`, which needs TypeScript's esnext.disposable lib:
// projects with an es20xx `lib` and `skipLibCheck: false` would fail to type-check. The method stays
// at run time; `free()` is the typed way to release an object early.
const readTypes = (p) => read(p).replace(/^\s*\[Symbol\.dispose\]\(\): void;\n/gm, '');
/** What each entry exports (JS and typings alike); the build fails on any difference. */
const EXPECTED_EXPORTS = {
  web: ['SSEChannel', 'installUniCloud'],
  node: ['SSEChannelWriter', 'deserializeSSEChannel', 'installUniCloud'],
};
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

// --- slim.js: the plain --target web glue; the user calls `await init()` -------------------------
const SELF_TYPES = '/* @ts-self-types="./sse_channel.d.ts" */';
let slim = read('web/sse_channel.js');
slim = replaceOnce(slim, SELF_TYPES, '/* @ts-self-types="./slim.d.ts" */', 'web glue');
writeFileSync(join(out, 'slim.js'), slim);
const slimTypes = readTypes('web/sse_channel.d.ts');
writeFileSync(join(out, 'slim.d.ts'), slimTypes);
copyFileSync(join(stage, 'sse_channel_bg.wasm'), join(out, 'sse_channel_bg.wasm'));
const slimValues = [...slim.matchAll(/^export (?:class|function|const) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);
checkExports('slim.js', slimValues.filter((n) => n !== 'initSync'), EXPECTED_EXPORTS.web);
checkExports('slim.d.ts', typedValues(slimTypes).filter((n) => n !== 'initSync'), EXPECTED_EXPORTS.web);

// --- node.cjs: the --target nodejs glue (reads ./sse_channel_bg.wasm beside it) -------------------
let node = read('node/sse_channel.js');
node = replaceOnce(node, SELF_TYPES, '/* @ts-self-types="./node.d.cts" */', 'node glue');
// The Node build's own wasm, beside node.cjs (sse_channel_bg.wasm is the browser build's).
node = replaceOnce(node, '`${__dirname}/sse_channel_bg.wasm`', '`${__dirname}/sse_channel_node_bg.wasm`', 'node glue');
writeFileSync(join(out, 'node.cjs'), node);
const nodeTypes = readTypes('node/sse_channel.d.ts');
writeFileSync(join(out, 'node.d.cts'), nodeTypes);
copyFileSync(join(stage, 'sse_channel_node_bg.wasm'), join(out, 'sse_channel_node_bg.wasm'));
checkExports('node.cjs', [...node.matchAll(/^exports\.([A-Za-z_$][\w$]*) = /gm)].map((m) => m[1]), EXPECTED_EXPORTS.node);
checkExports('node.d.cts', typedValues(nodeTypes), EXPECTED_EXPORTS.node);
for (const name of SHARED_TYPES) {
  if (interfaceText(slimTypes, name, 'web') !== interfaceText(nodeTypes, name, 'Node')) {
    throw new Error(`assemble: interface ${name} differs between the web and the Node typings`);
  }
}

// --- index.js: one self-contained ES module, the wasm inlined as base64 ---------------------------
let glue = read('inline/sse_channel.js');
glue = glue.replace(SELF_TYPES, '/* @ts-self-types="./index.d.ts" */');
if (/import\.meta|new URL\(/.test(glue)) throw new Error('assemble: inline glue still references a URL');
glue = replaceOnce(glue, 'export { initSync, __wbg_init as default };', '', 'inline glue');
const classes = [];
const functions = [];
const consts = [];
glue = glue.replace(/^export (class|function|const) ([A-Za-z_$][\w$]*)/gm, (_m, kind, name) => {
  ({ class: classes, function: functions, const: consts })[kind].push(name);
  return `${kind} ${name}`;
});
if (/^export /m.test(glue)) throw new Error('assemble: inline glue has an export form this script does not know');
checkExports('index.js', [...classes, ...functions, ...consts], EXPECTED_EXPORTS.web);

// The wasm is stored deflated: base64 text gzips poorly (its 6-bit symbols break the byte patterns),
// but base64 of already-compressed bytes costs next to nothing more once gzipped.
const wasm = readFileSync(join(stage, 'sse_channel_bg.wasm'));
const deflated = deflateRawSync(wasm, { level: 9 });
const inflateSrc = readFileSync(join(here, 'inflate.js'), 'utf8');
const inflate = new Function(`${inflateSrc}\nreturn __sseInflate;`)();
if (Buffer.compare(Buffer.from(inflate(deflated, wasm.length)), wasm) !== 0) {
  throw new Error('assemble: inflate.js does not reproduce the wasm');
}
const loader = [
  readFileSync(join(here, 'loader.js'), 'utf8')
    .replace("'__SSE_LOADING__'", JSON.stringify(loading))
    .replace("'__SSE_WASM_LEN__'", String(wasm.length))
    .replace("'__SSE_WASM_B64__'", () => JSON.stringify(deflated.toString('base64'))),
  inflateSrc,
].join('\n');
const exportsList = [
  ...classes.map((n) => `const __sse_${n} = __sseWrapClass(${n}, ${JSON.stringify(n)});`),
  ...functions.map((n) => `const __sse_${n} = __sseWrapFunction(${n}, ${JSON.stringify(n)});`),
  `export { ${[
    ...classes.map((n) => `__sse_${n} as ${n}`),
    ...functions.map((n) => `__sse_${n} as ${n}`),
    ...consts,
  ].join(', ')} };`,
];
writeFileSync(join(out, 'index.js'), `${glue.trimEnd()}\n\n${loader.trimEnd()}\n${exportsList.join('\n')}\n`);

// index.d.ts: the web typings without the init functions (users never call them).
let dts = readTypes('inline/sse_channel.d.ts');
const cut = dts.indexOf('export type InitInput');
if (cut < 0) throw new Error('assemble: no InitInput in the web typings (wasm-bindgen changed?)');
dts = dts.slice(0, cut).trimEnd() + '\n';
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
  `assembled ${out} (loading=${loading}; classes: ${classes.join(', ') || '-'}; functions: ${functions.join(', ') || '-'})`,
);
