#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target (fuzz/fuzz_targets/; the checks are in
# crates/relay/src/fuzz.rs) and prints how many inputs each ran. Installs what it needs: the nightly
# toolchain (rustup, minimal profile) and cargo-fuzz. New interesting inputs are added to
# fuzz/corpus/<target>/, which `make test` replays on stable (crates/relay/tests/fuzz_corpus.rs);
# a crash is saved under fuzz/artifacts/<target>/ and fails the run.
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_RUNS      or a number of inputs per target instead (e.g. 10000000)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_CMIN=1    minimize each corpus afterwards (cargo fuzz cmin)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[fuzz] %s\n' "$*" >&2; }

rustup toolchain list | grep -q '^nightly' || {
  log "installing the nightly toolchain (rustup, minimal profile)"
  rustup toolchain install nightly --profile minimal
}
command -v cargo-fuzz >/dev/null || {
  log "installing cargo-fuzz 0.13.2 (about 3 minutes)"
  cargo install cargo-fuzz --version 0.13.2
}

targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sse-channel-fuzz$')}
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit=(-runs="$FUZZ_RUNS")
else
  limit=(-max_total_time="${FUZZ_SECONDS:-60}")
fi
cd fuzz
cargo +nightly fuzz build -O
summary=()
for t in $targets; do
  log "$t: ${limit[*]}"
  out=$(mktemp)
  if ! cargo +nightly fuzz run -O "$t" -- "${limit[@]}" -print_final_stats=1 2>&1 | tee "$out" | grep -E '^(INFO|#[0-9]+ .*(NEW|DONE)|==|SUMMARY)' | tail -n 3; then
    cat "$out" >&2
    log "$t FAILED (see fuzz/artifacts/$t/)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n1)
  summary+=("$t: ${runs:-?} executions, corpus $(ls "corpus/$t" | wc -l) inputs")
  rm -f "$out"
  if [ "${FUZZ_CMIN:-}" = 1 ]; then cargo +nightly fuzz cmin -O "$t" >/dev/null 2>&1; fi
done
printf '%s\n' "${summary[@]}"
