// Assembles the npm package from wasm-bindgen's output. Called by scripts/build-pkg.sh; not shipped.
//
//   node pkg-template/build/assemble.mjs <stage> <out> [--loading eager|lazy|async] [--cargo-version V]
//
// <stage> holds three wasm-bindgen runs over the same (already wasm-opt'ed) wasm:
//   web/     --target web                             -> slim.js (loads sse_channel_bg.wasm by URL)
//   inline/  --target web --omit-default-module-path  -> index.js (the wasm inlined, no URL at all)
//   node/    --target nodejs                          -> node.cjs (reads sse_channel_bg.wasm with fs)
// and sse_channel_bg.wasm. See docs/loading.md for why index.js looks the way it does.
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, rmSync, existsSync } from 'node:fs';
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
writeFileSync(join(out, 'slim.d.ts'), readTypes('web/sse_channel.d.ts'));
copyFileSync(join(stage, 'sse_channel_bg.wasm'), join(out, 'sse_channel_bg.wasm'));

// --- node.cjs: the --target nodejs glue (reads ./sse_channel_bg.wasm beside it) -------------------
let node = read('node/sse_channel.js');
node = replaceOnce(node, SELF_TYPES, '/* @ts-self-types="./node.d.cts" */', 'node glue');
replaceOnce(node, '`${__dirname}/sse_channel_bg.wasm`', '', 'node glue'); // assert the path we rely on
writeFileSync(join(out, 'node.cjs'), node);
writeFileSync(join(out, 'node.d.cts'), readTypes('node/sse_channel.d.ts'));

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

// --- package.json, README ------------------------------------------------------------------------
const pkgJson = JSON.parse(readFileSync(join(template, 'package.json'), 'utf8'));
pkgJson.version = version;
writeFileSync(join(out, 'package.json'), JSON.stringify(pkgJson, null, 2) + '\n');
for (const f of ['README.md', 'LICENSE']) {
  if (existsSync(join(template, f))) copyFileSync(join(template, f), join(out, f));
}
console.log(
  `assembled ${out} (loading=${loading}; classes: ${classes.join(', ') || '-'}; functions: ${functions.join(', ') || '-'})`,
);
