# The two commands: `make demo` (build and start the demo) and `make test` (every check and test).
# Both run scripts/setup.sh first, which installs what is missing and is quick when all is there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup demo test lint build-wasm test-rust

help:
	@echo "make demo   build and start the demo (DEMO_PORT, default 8080)"
	@echo "make test   run every check and test"

setup:
	@bash scripts/setup.sh

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p sse-channel -p sse-channel-protocol --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -p sse-channel --target wasm32-unknown-unknown --no-default-features --features browser -- -D warnings
	cargo clippy -p sse-channel --target wasm32-unknown-unknown --no-default-features --features writer -- -D warnings
	RUSTDOCFLAGS='-D warnings' cargo doc -q --workspace --no-deps

build-wasm: setup
	cargo build -p sse-channel -p sse-channel-protocol --target wasm32-unknown-unknown

test-rust: setup
	cargo test --workspace

test: lint build-wasm test-rust test-size test-demo test-e2e test-node test-wasm
	@echo "make test: all passed"

demo: setup
	@DEMO_SKIP_SETUP=1 bash scripts/demo.sh

# Starts scripts/demo.sh (relay + runner) and drives the page in headless Chromium (owner: demo).
test-demo: pkg
	node --test tests/demo/demo.test.mjs

# ---- npm package (pkg/) and its end-to-end tests in fresh projects (owner: pkg) ----
.PHONY: pkg test-e2e test-size
pkg: setup
	bash scripts/build-pkg.sh

# The browser entry's size budget (pkg/index.js, gzip -9 bytes; scripts/check-size.sh).
test-size: pkg
	bash scripts/check-size.sh

test-e2e: pkg
	E2E_SKIP_BUILD=1 bash tests/e2e/run.sh

# Only the uni-app project of test-e2e (tests/uniapp: uni build -p h5, and uni -p h5).
.PHONY: test-uniapp
test-uniapp: pkg
	E2E_SKIP_BUILD=1 E2E_ONLY=uniapp bash tests/e2e/run.sh

# ---- Node tests of the writer and installUniCloud against a real relay (owner: writer) ----
.PHONY: test-node
test-node: setup
	bash scripts/test-node.sh

# ---- browser tests of the SDK (wasm-bindgen-test, headless Chromium and Firefox, real relays) (owner: sdk) ----
.PHONY: test-wasm
test-wasm: setup
	bash scripts/test-wasm.sh

# Delivery benchmark of the SDK in Chromium (release builds; prints numbers, not in `make test`).
.PHONY: bench-wasm
bench-wasm: setup
	BENCH=1 bash scripts/test-wasm.sh

.PHONY: bench-loading
bench-loading: setup
	bash tests/e2e/bench-loading.sh

# sse-relay and nchan side by side in one run (same publisher, same Chromium page); prints ratios.
# Installs nginx + libnginx-mod-nchan from apt when missing; not part of `make test`.
.PHONY: bench-nchan
bench-nchan: pkg
	bash tests/e2e/bench-nchan.sh

# ---- fuzzing: cargo-fuzz targets for every parser of untrusted input (nightly; not in `make test`,
# which replays the corpora on stable). FUZZ_SECONDS per target (default 60) or FUZZ_RUNS. ----
.PHONY: fuzz
fuzz:
	bash scripts/fuzz.sh

# The JS heap and the SDK's wasm memory over 2,000 channels in one page, SDK vs bare WebSocket + fetch (prints numbers).
.PHONY: bench-memory
bench-memory: setup
	bash tests/e2e/bench-memory.sh

# Browser time per event, SDK vs bare JS on the same batch frames, fake sockets, no network (prints numbers).
.PHONY: bench-frames
bench-frames: pkg
	node tests/e2e/bench-frames.mjs
