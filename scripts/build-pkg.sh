#!/usr/bin/env bash
# Builds the npm package into pkg/ (idempotent; `make pkg`). See docs/loading.md.
#   1. two builds of the sse-channel crate for wasm32-unknown-unknown with the `wasm-release` profile
#      (opt-level z, LTO, panic abort; `release` is the relay's), the browser's with the pinned
#      nightly and std rebuilt (-Zbuild-std, -Cpanic=immediate-abort):
#      the browser build (`--no-default-features --features browser`: SSEChannel, no writer) and
#      the Node build (`--no-default-features --features writer`: deserializeSSEChannel, no SSEChannel)
#   2. wasm-bindgen (name and producers sections removed), then wasm-opt -Oz from the npm
#      binaryen package in ./node_modules (never Debian's binaryen; never --all-features); the
#      browser wasm's import/export names shortened (the map goes to assemble.mjs for the glue)
#   3. wasm-bindgen glue of the browser build for --target web (slim.js, loads sse_channel_bg.wasm)
#      and web without a default URL (index.js, the wasm inlined), and of the Node build for nodejs
#      (node.cjs, reads sse_channel_node_bg.wasm), assembled by pkg-template/build/assemble.mjs,
#      which also checks that each entry exports what it should
# Env: CARGO_TARGET_DIR (default target/), SSE_CHANNEL_LOADING=eager|lazy|async (default lazy),
#      PKG_OUT (default pkg).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/cargo.sh
target_dir=$(cargo_target_dir)
out=${PKG_OUT:-pkg}
loading=${SSE_CHANNEL_LOADING:-lazy}
stage=build/pkg-stage
wasm_opt=node_modules/.bin/wasm-opt
log() { printf '[build-pkg] %s\n' "$*" >&2; }

[ -x "$wasm_opt" ] || { log "missing $wasm_opt: run scripts/setup.sh (npm ci)"; exit 1; }
case "$("$wasm_opt" --version)" in
  *"version 132"*) ;;
  *) log "unexpected wasm-opt: $("$wasm_opt" --version) (want the npm binaryen 132)"; exit 1 ;;
esac

rm -rf "$stage"
mkdir -p "$stage"
# The file keeps the crate's name, which names wasm-bindgen's outputs (sse_channel.js, sse_channel_bg.wasm).
# The browser build uses the pinned nightly (scripts/lib/cargo.sh, installed by setup.sh) to rebuild
# std for size with panics as immediate aborts: no panic handler and none of the formatting it
# keeps, no source paths, no Debug bodies (index.js 33,658 -> 30,639 bytes gzip -9; BENCHMARKS.md). In a target dir of its own, so
# the stable builds' caches stay valid. The Node build stays on stable.
mkdir -p "$stage/raw-browser" "$stage/raw-writer"
log "cargo +$SSE_NIGHTLY build -Zbuild-std=std,panic_abort --profile wasm-release --target wasm32-unknown-unknown -p sse-channel --no-default-features --features browser"
RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" cargo "+$SSE_NIGHTLY" build -Zbuild-std=std,panic_abort \
  --target-dir "$target_dir/nightly" --profile wasm-release --target wasm32-unknown-unknown \
  -p sse-channel --no-default-features --features browser
cp "$target_dir/nightly/wasm32-unknown-unknown/wasm-release/sse_channel.wasm" "$stage/raw-browser/sse_channel.wasm"
log "cargo build --profile wasm-release --target wasm32-unknown-unknown -p sse-channel --no-default-features --features writer"
cargo build --profile wasm-release --target wasm32-unknown-unknown -p sse-channel --no-default-features --features writer
cp "$target_dir/wasm32-unknown-unknown/wasm-release/sse_channel.wasm" "$stage/raw-writer/sse_channel.wasm"

bindgen() { wasm-bindgen --remove-name-section --remove-producers-section "$@"; }
bindgen --target web --out-dir "$stage/web" "$stage/raw-browser/sse_channel.wasm"
bindgen --target web --omit-default-module-path --out-dir "$stage/inline" "$stage/raw-browser/sse_channel.wasm"
bindgen --target nodejs --out-dir "$stage/node" "$stage/raw-writer/sse_channel.wasm"
# The two web runs emit the same wasm (the JS glue differs): check, then optimize it once.
cmp -s "$stage/web/sse_channel_bg.wasm" "$stage/inline/sse_channel_bg.wasm"
# Import, export and module names shortened (`__wbg_clearTimeout_7aed81f12417a1eb` -> `q`): each one
# is written in the wasm and again in the glue. assemble.mjs renames them in the glue from the map.
"$wasm_opt" -Oz --minify-imports-and-exports-and-modules --strip-target-features "$stage/web/sse_channel_bg.wasm" -o "$stage/sse_channel_bg.wasm" \
  >"$stage/wasm-names.json"
"$wasm_opt" -Oz "$stage/node/sse_channel_bg.wasm" -o "$stage/sse_channel_node_bg.wasm"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
node pkg-template/build/assemble.mjs "$stage" "$out" --loading "$loading" --cargo-version "$version"

size() { printf '%s: %s bytes (%s gzip -9)' "$1" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
log "browser: $(size "$out/sse_channel_bg.wasm"); $(size "$out/index.js")"
log "node: $(size "$out/sse_channel_node_bg.wasm"); $(size "$out/node.cjs")"
