#!/usr/bin/env bash
# The network figures: one-way gossip latency through the relay hub (native → native and
# page → page in headless Chromium) and the fetch of an announced 2 MiB delta over a relay
# circuit, with release builds of the relay and the peer; the browser node's figures; blob
# transfers tab to tab (10 and 100 MB). Runs tests/e2e's bench (tests/e2e/tests/it/bench.rs) in
# full mode and writes target/bench/{net,browser-node,blobs}.json. Not part of
# scripts/test.sh (which runs the same bench in quick mode): nothing here is asserted.
# Extra arguments go to cargo (e.g. --locked).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bash "$ROOT/scripts/bootstrap.sh"
bash "$ROOT/scripts/build-apps.sh" "$@"
bash "$ROOT/scripts/build-pkg.sh" "$@"
say "bench: network, browser-node and blob figures (release relay and peers, headless Chromium pages) → target/bench/{net,browser-node,blobs}.json"
TABMESH_BENCH=full cargo test -p tabmesh-e2e --release --test e2e "$@" -- bench --nocapture
