#!/usr/bin/env bash
# Builds the npm package `tabmesh` in pkg/: the wasm node (crates/web) for wasm32, its
# wasm-bindgen glue (--target web: the browser fetches the .wasm next to it; the Node.js entry
# hands it the bytes) into pkg/wasm/, then the TypeScript facade (pkg/src → pkg/dist).
#
#   bash scripts/build-pkg.sh                   # profile pkg (LTO) + wasm-opt -Oz (npm binaryen): what ships
#   bash scripts/build-pkg.sh --profile wasm-test [cargo args…]   # the tests' faster build, no wasm-opt
#
# Then `npm pack ./pkg` makes the tarball. Requires scripts/bootstrap.sh (wasm-bindgen CLI, npm deps).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PATH="$(wasm_bindgen_bin_dir):$ROOT/node_modules/.bin:$PATH"

PROFILE=pkg
if [ "${1:-}" = "--profile" ]; then
    PROFILE="$2"
    shift 2
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$ROOT/pkg/wasm"

say "pkg: cargo build -p tabmesh-web (wasm32, profile $PROFILE)"
cargo build -p tabmesh-web --lib --target wasm32-unknown-unknown --profile "$PROFILE" "$@"
rm -rf "$OUT"
mkdir -p "$OUT"
say "pkg: wasm-bindgen --target web → pkg/wasm/"
wasm-bindgen --target web --out-dir "$OUT" --out-name tabmesh_web \
    "$TARGET_DIR/wasm32-unknown-unknown/$PROFILE/tabmesh_web.wasm"
if [ "$PROFILE" = pkg ]; then
    # npm binaryen (node_modules/.bin/wasm-opt, version 132): Debian's older wasm-opt breaks
    # wasm-bindgen output (TOOLCHAIN.md, pitfall D).
    say "pkg: wasm-opt -Oz ($(wasm-opt --version))"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$OUT/tabmesh_web_bg.wasm" -o "$OUT/tabmesh_web_bg.wasm"
fi
say "pkg: tsc (pkg/src → pkg/dist)"
rm -rf "$ROOT/pkg/dist"
tsc -p "$ROOT/pkg"
say "pkg: built ($(du -h "$OUT/tabmesh_web_bg.wasm" | cut -f1) wasm, $(gzip -9c "$OUT/tabmesh_web_bg.wasm" | wc -c) bytes gzipped)"
