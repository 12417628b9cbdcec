# Sourced by scripts: where cargo puts its builds, and the pinned nightly of the browser build.
#   SSE_NIGHTLY        the nightly toolchain (with rust-src) that builds the npm package's browser wasm
#                      with std rebuilt for size (scripts/build-pkg.sh; installed by scripts/setup.sh)
#   cargo_target_dir   prints cargo's target directory, absolute: CARGO_TARGET_DIR when set (a relative
#                      value from the current directory, as cargo takes it), else build.target-dir
#                      from .cargo/config.toml, else <workspace>/target. Asked of `cargo metadata`, so
#                      it is always where `cargo build` writes.
SSE_NIGHTLY=nightly-2026-05-20

cargo_target_dir() {
  if [ -z "${SSE_CARGO_TARGET_DIR_SEEN:-}" ]; then
    SSE_CARGO_TARGET_DIR_SEEN=$(cargo metadata --format-version 1 --no-deps |
      node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => process.stdout.write(JSON.parse(s).target_directory))')
    [ -n "$SSE_CARGO_TARGET_DIR_SEEN" ] || { echo "cargo metadata named no target directory" >&2; return 1; }
  fi
  printf '%s\n' "$SSE_CARGO_TARGET_DIR_SEEN"
}
