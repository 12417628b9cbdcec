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
#   FUZZ_JOBS      targets run at once (default 1)
# No sanitizer (-s none): the code under test has no unsafe, and AddressSanitizer would make each
# input about three times slower; panics and failed checks are what the targets look for.
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
cargo +nightly fuzz build -O -s none
logs=$(mktemp -d)
run_one() {
  local t=$1 started=$SECONDS
  log "$t: ${limit[*]}"
  if ! cargo +nightly fuzz run -O -s none "$t" -- "${limit[@]}" -print_final_stats=1 >"$logs/$t" 2>&1; then
    tail -n 40 "$logs/$t" >&2
    log "$t FAILED (see fuzz/artifacts/$t/)"
    return 1
  fi
  if [ "${FUZZ_CMIN:-}" = 1 ]; then cargo +nightly fuzz cmin -O -s none "$t" >/dev/null 2>&1; fi
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t" | tail -n1)
  echo "$t: ${runs:-?} executions in $((SECONDS - started)) s, corpus $(ls "corpus/$t" | wc -l) inputs" >"$logs/$t.summary"
}
failed=0
running=0
for t in $targets; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "${FUZZ_JOBS:-1}" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
cat "$logs"/*.summary 2>/dev/null
rm -rf "$logs"
exit "$failed"
