#!/usr/bin/env bash
# Builds the side-by-side benchmarks' wasm module (crates/bench-wasm: the CRDTs directly and two
# NodeCores in one module) and its wasm-bindgen glue (--target web) into target/bench-wasm/.
# No wasm-opt: function names stay, so the benchmarks' CPU profiles name tabmesh's functions.
#
#   bash scripts/build-bench-wasm.sh                        # profile pkg (LTO): what the full run measures
#   bash scripts/build-bench-wasm.sh --profile wasm-test    # the tests' faster build (CI's quick run)
#
# Requires scripts/bootstrap.sh (wasm-bindgen CLI).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PATH="$(wasm_bindgen_bin_dir):$PATH"

PROFILE=pkg
if [ "${1:-}" = "--profile" ]; then
    PROFILE="$2"
    shift 2
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET_DIR/bench-wasm"

say "bench-wasm: cargo build -p tabmesh-bench-wasm (wasm32, profile $PROFILE)"
cargo build -p tabmesh-bench-wasm --lib --target wasm32-unknown-unknown --profile "$PROFILE" "$@"
rm -rf "$OUT"
mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --out-name tabmesh_bench \
    "$TARGET_DIR/wasm32-unknown-unknown/$PROFILE/tabmesh_bench_wasm.wasm"
echo "$PROFILE" > "$OUT/PROFILE"
say "bench-wasm: built → $OUT ($(du -h "$OUT/tabmesh_bench_bg.wasm" | cut -f1) wasm)"
