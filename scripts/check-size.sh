#!/usr/bin/env bash
# The size budget of the browser entry (`make test-size`, part of `make test`): pkg/index.js, the
# self-contained module every page that imports SSEChannel downloads, gzip -9, in bytes. A byte count
# is deterministic, so this is a test, unlike a time. Where the bytes go: `make pkg` prints it
# (pkg-template/build/assemble.mjs); before/after figures are in BENCHMARKS.md.
# Env: PKG_OUT (default pkg).
set -euo pipefail
cd "$(dirname "$0")/.."

# The budget: 20 KiB was the goal (docs/loading.md, "Size budget"); the figure here is the ceiling
# the package must not exceed today (its size rounded up to 64 bytes), lowered as the entry shrinks.
BUDGET=${SSE_CHANNEL_SIZE_BUDGET:-15808}
file=${PKG_OUT:-pkg}/index.js
[ -f "$file" ] || { echo "[check-size] missing $file: run make pkg" >&2; exit 1; }
size=$(gzip -9c "$file" | wc -c)
if [ "$size" -gt "$BUDGET" ]; then
  echo "[check-size] FAIL: $file is $size bytes gzip -9, over the budget of $BUDGET" >&2
  exit 1
fi
echo "[check-size] ok: $file is $size bytes gzip -9 (budget $BUDGET)" >&2
