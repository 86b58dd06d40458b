#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test tabmesh, idempotently:
#   - the wasm32-unknown-unknown Rust target;
#   - wasm-bindgen-cli at exactly the version Cargo.lock resolved, into
#     $HOME/.cache/tabmesh/tools/wasm-bindgen-<version> (built from the crates registry, ~8 min once);
#   - Debian's chromium + chromium-driver (headless browser tests);
#   - npm dependencies, when the repository has a package-lock.json.
# Every step says what it does and is skipped when already done.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# --- Rust target -----------------------------------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "wasm32-unknown-unknown target: present"
else
    say "wasm32-unknown-unknown target: installing (rustup target add)"
    rustup target add wasm32-unknown-unknown
fi

# --- wasm-bindgen-cli ------------------------------------------------------------------------------
WB_VERSION="$(locked_wasm_bindgen_version)"
[ -n "$WB_VERSION" ] || die "Cargo.lock names no wasm-bindgen version; run 'cargo generate-lockfile'?"
WB_DIR="$TOOLS_DIR/wasm-bindgen-$WB_VERSION"
if [ -x "$WB_DIR/bin/wasm-bindgen-test-runner" ] && [ -x "$WB_DIR/bin/wasm-bindgen" ]; then
    say "wasm-bindgen-cli $WB_VERSION: present in $WB_DIR"
else
    say "wasm-bindgen-cli $WB_VERSION: building from the crates registry into $WB_DIR (about 8 minutes, once)"
    mkdir -p "$WB_DIR"
    CARGO_TARGET_DIR="$TOOLS_DIR/.build" CARGO_INCREMENTAL=0 \
        cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --root "$WB_DIR"
    rm -rf "$TOOLS_DIR/.build"
fi
found="$("$WB_DIR/bin/wasm-bindgen" --version | awk '{print $2}')"
if [ "$found" != "$WB_VERSION" ]; then
    die "wasm-bindgen CLI is $found but Cargo.lock has wasm-bindgen $WB_VERSION: they must match exactly. Remove $WB_DIR and run this script again."
fi

# --- Chromium + chromedriver ----------------------------------------------------------------------
apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "installing $* needs root (or sudo)"
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    # The image's docker-clean hook deletes /var/cache/apt/archives/*.deb between dpkg runs, which
    # breaks installs that apt splits into several runs: keep the archives elsewhere.
    $sudo mkdir -p /var/tmp/apt-archives/partial
    local opts=(-y -q --no-install-recommends -o Dir::Cache::Archives=/var/tmp/apt-archives/)
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@"; then
        warn "apt-get install failed; repairing with 'apt-get -f install' and trying once more"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get -f install "${opts[@]}"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@"
    fi
}
if [ -x /usr/lib/chromium/chromium ] && [ -x /usr/bin/chromedriver ]; then
    say "chromium + chromium-driver: present ($(/usr/bin/chromedriver --version | awk '{print $2}'))"
else
    say "chromium + chromium-driver: installing Debian's packages (about 30 s)"
    apt_install chromium chromium-driver
fi

# --- npm dependencies -----------------------------------------------------------------------------
NPM_CI_VERSION=10.9.4
if [ -f "$ROOT/package-lock.json" ]; then
    stamp="$ROOT/node_modules/.tabmesh-lock-sha"
    want="$(sha256sum "$ROOT/package-lock.json" | awk '{print $1}')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "npm dependencies: present"
    else
        # npm 10's `ci`, from the registry: npm 11's refuses a lock without the optional
        # platform packages of rollup (vite's bundler) that the registry does not carry.
        say "npm dependencies: installing from package-lock.json (npm@$NPM_CI_VERSION ci, through npx)"
        (cd "$ROOT" && npx --yes "npm@$NPM_CI_VERSION" ci --no-audit --no-fund)
        echo "$want" > "$stamp"
    fi
fi

say "bootstrap done (tools in $TOOLS_DIR)"
