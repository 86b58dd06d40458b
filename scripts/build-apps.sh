#!/usr/bin/env bash
# Builds the example apps (crates/apps/*) to wasm32 with plain cargo, in the workspace's `app`
# profile (opt-level z, LTO, abort; Cargo.toml), and copies each module to
# target/apps/<name>.wasm (under $CARGO_TARGET_DIR when set), e.g. target/apps/kv-store.wasm.
# Same workspace, lockfile and target dir as every other build, so nothing builds twice.
# Extra arguments go to cargo (scripts/test.sh passes --locked).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET_DIR/apps"
APPS=(kv-store kv-store-with-handlers collab-text)

packages=()
for app in "${APPS[@]}"; do
    packages+=(-p "tabmesh-app-$app")
done
# Rust reserves a 1 MiB shadow stack in linear memory by default, which every call's fresh
# instance then allocates (17 pages for a small app). 256 KiB is ample for these apps and halves
# the cost of a call (node/execute_set: ~270 µs → ~150 µs on a loaded 2-core machine). With
# --target set, RUSTFLAGS applies to the wasm32 app artifacts only, not to host build scripts.
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-zstack-size=262144" \
    cargo build "${packages[@]}" --lib --target wasm32-unknown-unknown --profile app "$@"

mkdir -p "$OUT"
for app in "${APPS[@]}"; do
    built="$TARGET_DIR/wasm32-unknown-unknown/app/tabmesh_app_${app//-/_}.wasm"
    [ -f "$built" ] || die "cargo built no $built"
    cp "$built" "$OUT/$app.wasm"
    printf '%-28s %8d bytes\n' "$app.wasm" "$(wc -c < "$OUT/$app.wasm")"
done
