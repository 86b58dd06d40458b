#!/usr/bin/env bash
# Runs every tabmesh test, after installing what a fresh machine lacks (scripts/bootstrap.sh):
#   1. cargo fmt --check
#   2. clippy -D warnings on all targets, natively and for wasm32 on the crates that ship to browsers
#   3. the example apps built to wasm32 (scripts/build-apps.sh), then native tests (unit,
#      integration, benches in test mode, doctests), among them the end-to-end tests of tests/e2e:
#      real relay and peer processes, headless Chromium pages and Node.js processes running the npm
#      package (scripts/build-pkg.sh, the tests' wasm-test profile) on 127.0.0.1, and the quick
#      side-by-side benchmarks against Yjs, Automerge and Loro (scripts/build-bench-wasm.sh)
#   3b. the package's JS tests (node --test pkg/test)
#   4. the deterministic simulator: 1000 seeds under heavy chaos, a removed member, concurrent joiners
#      and a Byzantine member must all converge
#   5. the same test sources in headless Chromium (one optimised wasm32 binary)
# Then prints how many tests ran per crate in each place, and a phase-time table.
# Each artifact is built once, in one profile per target, with identical feature sets.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ -n "${CI:-}" ]; then
    export CARGO_INCREMENTAL=0
fi
LOG_DIR="$ROOT/target/test-logs"
mkdir -p "$LOG_DIR"

# Library crates that ship to the browser (compiled and linted for wasm32), and the guest SDK. The
# browser crates' test sources are linted for wasm32 through tests/browser, which includes them.
WASM_LIBS=(-p tabmesh-base -p tabmesh-auth -p tabmesh-dag -p tabmesh-state -p tabmesh-sync -p tabmesh-blobs -p tabmesh-node -p tabmesh-storage -p tabmesh-net -p tabmesh-peer -p tabmesh-web -p tabmesh-bench-wasm -p tabmesh-abi -p tabmesh-runtime -p tabmesh-sdk)

phase "bootstrap (tools and browser)"
bash "$ROOT/scripts/bootstrap.sh"
PATH="$(wasm_bindgen_bin_dir):$PATH"
export PATH

phase "cargo fmt --check"
cargo fmt --all -- --check

phase "clippy native (all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "clippy wasm32 (browser crates and the browser test binary)"
cargo clippy "${WASM_LIBS[@]}" --lib --locked --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p tabmesh-browser-tests --tests --locked --target wasm32-unknown-unknown -- -D warnings

phase "example apps to wasm32 (scripts/build-apps.sh → target/apps/*.wasm, read by the runtime's app tests)"
bash "$ROOT/scripts/build-apps.sh" --locked

phase "the npm package (scripts/build-pkg.sh --profile wasm-test → pkg/wasm, pkg/dist; used by tests/e2e)"
bash "$ROOT/scripts/build-pkg.sh" --profile wasm-test --locked

phase "the side-by-side benchmarks' wasm module (scripts/build-bench-wasm.sh --profile wasm-test → target/bench-wasm; the quick compare in tests/e2e runs it)"
bash "$ROOT/scripts/build-bench-wasm.sh" --profile wasm-test --locked

phase "the package's JS tests (node --test pkg/test)"
node --test "$ROOT/pkg/test/" 2>&1 | tee "$LOG_DIR/js.log"

phase "native tests (all targets)"
cargo test --workspace --all-targets --locked 2>&1 | tee "$LOG_DIR/native.log"

phase "native doctests"
cargo test --workspace --doc --locked 2>&1 | tee "$LOG_DIR/doc.log"

phase "simulator: 1000 seeds under heavy chaos (release)"
cargo run -p tabmesh-sim --release --locked -- --seeds 1000 --chaos heavy > "$LOG_DIR/sim.log"
tail -n 1 "$LOG_DIR/sim.log"

phase "simulator: a removed member in 100 seeds under heavy chaos (release)"
cargo run -p tabmesh-sim --release --locked -- --seeds 100 --scenario removal > "$LOG_DIR/sim-removal.log"
tail -n 1 "$LOG_DIR/sim-removal.log"

phase "simulator: concurrent joiners in 200 seeds under heavy chaos (release)"
cargo run -p tabmesh-sim --release --locked -- --seeds 200 --scenario joins --chaos heavy > "$LOG_DIR/sim-joins.log"
tail -n 1 "$LOG_DIR/sim-joins.log"
phase "simulator: a Byzantine member (forge, replay, equivocate, flood, withhold) in 300 seeds under heavy chaos (release)"
cargo run -p tabmesh-sim --release --locked -- --seeds 300 --scenario byzantine --chaos heavy > "$LOG_DIR/sim-byzantine.log"
tail -n 1 "$LOG_DIR/sim-byzantine.log"

phase "browser tests (headless Chromium)"
cargo test -p tabmesh-browser-tests --target wasm32-unknown-unknown --profile wasm-test --locked \
    2>&1 | tee "$LOG_DIR/browser.log"

phase_end
python3 "$ROOT/scripts/count-tests.py" "$LOG_DIR/native.log" "$LOG_DIR/doc.log" "$LOG_DIR/browser.log" "$LOG_DIR/js.log"
phase_table
