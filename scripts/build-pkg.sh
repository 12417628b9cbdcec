#!/usr/bin/env bash
# Builds the npm package into pkg/ (idempotent; `make pkg`). See docs/loading.md.
#   1. release build of the sse-channel crate for wasm32-unknown-unknown (opt-level z, LTO)
#   2. wasm-bindgen (name and producers sections removed), then wasm-opt -Oz from the npm
#      binaryen package in ./node_modules (never Debian's binaryen; never --all-features)
#   3. wasm-bindgen glue for --target web (slim.js), web without a default URL (index.js, the wasm
#      inlined) and nodejs (node.cjs), assembled by pkg-template/build/assemble.mjs
# Env: CARGO_TARGET_DIR (default target/), SSE_CHANNEL_LOADING=eager|lazy|async (default lazy),
#      PKG_OUT (default pkg).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
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

log "cargo build --release --target wasm32-unknown-unknown -p sse-channel"
cargo build --release --target wasm32-unknown-unknown -p sse-channel
raw="$target_dir/wasm32-unknown-unknown/release/sse_channel.wasm"

rm -rf "$stage"
mkdir -p "$stage"
bindgen() { wasm-bindgen --remove-name-section --remove-producers-section "$@"; }
bindgen --target web --out-dir "$stage/web" "$raw"
bindgen --target web --omit-default-module-path --out-dir "$stage/inline" "$raw"
bindgen --target nodejs --out-dir "$stage/node" "$raw"
# The three runs emit the same wasm (the JS glue differs): check, then optimize it once.
cmp -s "$stage/web/sse_channel_bg.wasm" "$stage/inline/sse_channel_bg.wasm"
cmp -s "$stage/web/sse_channel_bg.wasm" "$stage/node/sse_channel_bg.wasm"
"$wasm_opt" -Oz "$stage/web/sse_channel_bg.wasm" -o "$stage/sse_channel_bg.wasm"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
node pkg-template/build/assemble.mjs "$stage" "$out" --loading "$loading" --cargo-version "$version"

wasm_bytes=$(wc -c <"$out/sse_channel_bg.wasm")
wasm_gz=$(gzip -9c "$out/sse_channel_bg.wasm" | wc -c)
index_bytes=$(wc -c <"$out/index.js")
index_gz=$(gzip -9c "$out/index.js" | wc -c)
log "$out/sse_channel_bg.wasm: $wasm_bytes bytes ($wasm_gz gzip -9); $out/index.js: $index_bytes bytes ($index_gz gzip -9)"
