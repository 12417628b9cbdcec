#!/usr/bin/env bash
# Installs everything `make demo` and `make test` need, idempotently: fast when all is there.
#   wasm32 target, the pinned nightly with rust-src (the package's browser build), wasm-bindgen CLI (the exact version of the crate), Chromium + ChromeDriver,
#   Firefox ESR + geckodriver, Redis, and the Node tools in ./node_modules (playwright-core, binaryen's wasm-opt, esbuild).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The pinned nightly with rust-src: the package's browser wasm is built with std rebuilt for size
# (-Zbuild-std, panics as immediate aborts; scripts/build-pkg.sh). Minimal profile, ~10 s.
source scripts/lib/cargo.sh
if ! rustup component list --toolchain "$SSE_NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
  log "installing $SSE_NIGHTLY with rust-src (minimal profile)"
  rustup toolchain install "$SSE_NIGHTLY" --profile minimal --component rust-src
fi

want_wb=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' Cargo.toml)
have_wb=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_wb" != "$want_wb" ]; then
  log "installing wasm-bindgen-cli $want_wb (about 2 minutes)"
  # No --locked: the CLI's own lockfile pins a crate the registry here lacks.
  cargo install wasm-bindgen-cli --version "$want_wb"
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v redis-server >/dev/null || need_apt+=(redis-server)
# The relay's systemd unit is checked with systemd-analyze, the relay traced with strace
# (crates/relay/tests/deploy.rs).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v strace >/dev/null || need_apt+=(strace)
# nginx with the relay's configuration (crates/relay/deploy/nginx.conf, tests/e2e/nodes.test.mjs),
# over HTTPS with a certificate openssl makes.
command -v nginx >/dev/null || need_apt+=(nginx)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests start their own redis-server and nginx on loopback: keep the packages from starting
  # system services (on port 6379, on port 80) while they install, as container images do.
  policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
fi

# Firefox's WebDriver, for the browser tests in a second engine. A debug build: it only relays
# WebDriver commands, and compiles in about 2 minutes on 2 cores instead of 4-6 optimized.
want_gd=0.37.1
if [ "$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}')" != "$want_gd" ]; then
  log "installing geckodriver $want_gd (about 2 minutes)"
  cargo install --debug geckodriver --version "$want_gd"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci (tools)"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
