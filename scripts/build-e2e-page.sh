#!/usr/bin/env bash
# Builds the Chromium page of the end-to-end tests (tests/e2e/page) into target/e2e-page/:
# the wasm32 node (one optimised build, the browser tests' profile), its wasm-bindgen glue
# (--target web) and index.html. tests/e2e serves that directory to headless Chromium.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PATH="$(wasm_bindgen_bin_dir):$PATH"
OUT="$ROOT/target/e2e-page"
say "e2e page: cargo build (wasm32, wasm-test profile) and wasm-bindgen --target web into $OUT"
cargo build -p tabmesh-e2e-page --target wasm32-unknown-unknown --profile wasm-test "$@"
mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --out-dir "$OUT" --out-name page \
    "$ROOT/target/wasm32-unknown-unknown/wasm-test/tabmesh_e2e_page.wasm"
cp "$ROOT/tests/e2e/page/index.html" "$OUT/index.html"
