#!/usr/bin/env bash
# Runs the demo: builds everything, starts the relay, serves the demo page on localhost and prints
# its URL. The relay exists (relay/, `cargo run -p tabmesh-relay`); the browser node and the demo
# page land with the browser-node work; until then this command only prepares the machine and
# says so.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash "$ROOT/scripts/bootstrap.sh"
if [ ! -d "$ROOT/www/src" ]; then
    die "the demo page is not built yet: it arrives with the browser node. The relay runs with 'cargo run -p tabmesh-relay' and a native node with 'cargo run -p tabmesh-peer -- --help'; 'bash scripts/test.sh' runs every test."
fi
