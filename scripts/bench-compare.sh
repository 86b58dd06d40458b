#!/usr/bin/env bash
# The side-by-side benchmarks: the same workloads through tabmesh and through Yjs, Automerge and
# Loro (npm, versions pinned in package.json), in one headless Chromium page and in Node.js, with
# release builds (the npm package at its shipping profile, the bench module, the relay, the
# peers). Runs tests/e2e's compare test in full mode and writes target/bench/compare.json and
# target/bench/compare.md (the tables), CPU profiles of W1 and W7 under target/bench/profiles/.
# The editing trace is ../shared/data/automerge-paper.json.gz (or $TABMESH_TRACE); without it a
# synthetic trace is replayed and the report says so. Not part of scripts/test.sh, which runs the
# same suite in quick mode; nothing here is asserted but completeness and correctness.
# Extra arguments go to cargo (e.g. --locked).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bash "$ROOT/scripts/bootstrap.sh"
bash "$ROOT/scripts/build-apps.sh" "$@"
bash "$ROOT/scripts/build-pkg.sh" "$@"
bash "$ROOT/scripts/build-bench-wasm.sh" "$@"
say "bench: tabmesh beside Yjs, Automerge and Loro (headless Chromium, Node.js) → target/bench/compare.{json,md}"
TABMESH_BENCH=full TABMESH_BENCH_PROFILE="${TABMESH_BENCH_PROFILE:-W1,W7}" \
    cargo test -p tabmesh-e2e --release --test e2e "$@" -- compare --nocapture
cat "$ROOT/target/bench/compare.md"
