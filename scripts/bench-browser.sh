#!/usr/bin/env bash
# The browser figure of the app runtime: builds the example apps (scripts/build-apps.sh), then runs
# tests/browser/tests/bench.rs (feature `bench`) in release for wasm32 in headless Chromium through
# the same cargo-test runner as the browser tests (.cargo/config.toml). It measures
# execute("set") and execute("get") calls per second through NodeCore on kv-store.wasm with
# performance.now(), prints one JSON line and writes it to target/bench/runtime-browser.json
# (under $CARGO_TARGET_DIR when set). Not part of scripts/test.sh: nothing here is asserted.
# Extra arguments go to cargo (e.g. --locked).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
OUT_DIR="$TARGET_DIR/bench"
OUT="$OUT_DIR/runtime-browser.json"

bash "$ROOT/scripts/bootstrap.sh"
PATH="$(wasm_bindgen_bin_dir):$PATH"
export PATH

bash "$ROOT/scripts/build-apps.sh" "$@"
# include_bytes! needs an absolute directory.
export TABMESH_APPS_DIR="$TARGET_DIR/apps"

mkdir -p "$OUT_DIR"
log="$OUT_DIR/runtime-browser.log"
say "bench: execute(\"set\") on kv-store.wasm through NodeCore, release wasm32 in headless Chromium"
cargo test -p tabmesh-browser-tests --features bench --test bench \
    --target wasm32-unknown-unknown --release "$@" -- --nocapture 2>&1 | tee "$log"

line="$(grep -o '{"bench":"runtime-browser".*}' "$log" | tail -n 1 || true)"
[ -n "$line" ] || die "the bench printed no JSON line (see $log)"
printf '%s\n' "$line" > "$OUT"
say "wrote $OUT"
printf '%s\n' "$line"
