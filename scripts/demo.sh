#!/usr/bin/env bash
# Runs the demo: builds what it needs, starts the relay and the demo page's server on 127.0.0.1,
# prints the page's URL, and stops both on Ctrl-C.
#
#   bash scripts/demo.sh              # bootstrap + build (apps, the npm package, the relay), then run
#   bash scripts/demo.sh --no-build   # run what is built already
#
# Ports: TABMESH_DEMO_PORT (the page, default 8080), TABMESH_RELAY_PORT (the relay: WebSocket on
# TCP and WebRTC-direct on UDP, default 4001). The relay's key and WebRTC certificate are kept in
# target/demo/ (under $CARGO_TARGET_DIR when set), so its address — and the invitations made
# against it — stay valid across runs; logs go there too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

BUILD=1
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

DEMO_PORT="${TABMESH_DEMO_PORT:-8080}"
RELAY_PORT="${TABMESH_RELAY_PORT:-4001}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DEMO_DIR="$TARGET_DIR/demo"
RELAY_BIN="$TARGET_DIR/release/tabmesh-relay"
mkdir -p "$DEMO_DIR"

if [ "$BUILD" = 1 ]; then
    say "demo: installing what this machine lacks (scripts/bootstrap.sh)"
    bash "$ROOT/scripts/bootstrap.sh"
    say "demo: building the example apps to wasm32 (scripts/build-apps.sh → $TARGET_DIR/apps/)"
    bash "$ROOT/scripts/build-apps.sh"
    say "demo: building the npm package, LTO + wasm-opt (scripts/build-pkg.sh → pkg/wasm, pkg/dist; a few minutes the first time)"
    bash "$ROOT/scripts/build-pkg.sh"
    say "demo: building the relay (cargo build -p tabmesh-relay --release)"
    cargo build -p tabmesh-relay --release
else
    say "demo: --no-build: using what is built"
fi
[ -x "$RELAY_BIN" ] || die "no relay binary at $RELAY_BIN: run without --no-build (or cargo build -p tabmesh-relay --release)"
[ -f "$ROOT/pkg/dist/browser.js" ] && [ -f "$ROOT/pkg/wasm/tabmesh_web_bg.wasm" ] ||
    die "the npm package is not built: run without --no-build (or bash scripts/build-pkg.sh)"
[ -f "$TARGET_DIR/apps/kv-store.wasm" ] && [ -f "$TARGET_DIR/apps/collab-text.wasm" ] ||
    die "the example apps are not built: run without --no-build (or bash scripts/build-apps.sh)"
command -v node >/dev/null || die "node (Node.js ≥ 20) is needed to serve the page"

RELAY_PID=""
SERVE_PID=""
stop() {
    trap - EXIT INT TERM
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
    [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap 'echo; say "demo: stopping the relay and the page server"; stop; exit 0' INT TERM
trap stop EXIT

# Waits (up to 30 s) for a line matching $2 in file $1 while process $3 runs; prints it.
await_line() {
    local file="$1" pattern="$2" pid="$3" line="" i
    for i in $(seq 300); do
        line="$(grep -m1 -e "$pattern" "$file" 2>/dev/null || true)"
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

say "demo: starting the relay on 127.0.0.1:$RELAY_PORT (WebSocket over TCP, WebRTC-direct over UDP; key and certificate in $DEMO_DIR, log in $DEMO_DIR/relay.log)"
: >"$DEMO_DIR/relay.addrs"
RUST_LOG="${RUST_LOG:-info}" "$RELAY_BIN" \
    --listen "/ip4/127.0.0.1/tcp/$RELAY_PORT/ws" \
    --listen "/ip4/127.0.0.1/udp/$RELAY_PORT/webrtc-direct" \
    --identity "$DEMO_DIR/relay.key" \
    --webrtc-cert "$DEMO_DIR/relay-cert.pem" \
    >"$DEMO_DIR/relay.addrs" 2>"$DEMO_DIR/relay.log" &
RELAY_PID=$!
RELAY_ADDR="$(await_line "$DEMO_DIR/relay.addrs" '/ws/p2p/' "$RELAY_PID")" || {
    tail -n 5 "$DEMO_DIR/relay.log" >&2 || true
    die "the relay did not start (is port $RELAY_PORT taken? set TABMESH_RELAY_PORT)"
}
say "demo: the relay listens at $RELAY_ADDR"

say "demo: serving the page on 127.0.0.1:$DEMO_PORT (www/serve.mjs: www/ at /, pkg/ at /pkg/, the apps at /apps/, the relay's address in /config.json)"
node "$ROOT/www/serve.mjs" --port "$DEMO_PORT" --relay "$RELAY_ADDR" --apps "$TARGET_DIR/apps" \
    >"$DEMO_DIR/serve.out" 2>"$DEMO_DIR/serve.log" &
SERVE_PID=$!
URL="$(await_line "$DEMO_DIR/serve.out" '^http://' "$SERVE_PID")" || {
    cat "$DEMO_DIR/serve.log" >&2 || true
    die "the page server did not start (is port $DEMO_PORT taken? set TABMESH_DEMO_PORT)"
}

printf '\n'
say "demo: running. Open $URL in two browser profiles (or a normal and a private window):"
printf '      1. in the first, click "New board" (or "New document"), then "Invite";\n'
printf '      2. open the invitation link in the second: it joins, and edits show up on both sides.\n'
printf '      Tabs of one profile share one node (one leads, the others follow).\n'
printf '      Relay: %s\n' "$RELAY_ADDR"
printf '      Logs: %s/relay.log, %s/serve.log\n\n' "$DEMO_DIR" "$DEMO_DIR"
say "demo: press Ctrl-C to stop the relay and the server"

# Runs until Ctrl-C, or until one of the two stops by itself (then the other is stopped too).
set +e
wait -n "$RELAY_PID" "$SERVE_PID"
status=$?
set -e
if kill -0 "$RELAY_PID" 2>/dev/null; then
    warn "the page server stopped (exit $status); see $DEMO_DIR/serve.log"
else
    warn "the relay stopped (exit $status); see $DEMO_DIR/relay.log"
fi
exit 1
