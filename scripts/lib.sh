# Shared helpers for the tabmesh scripts (sourced, not run).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TABMESH_TOOLS_DIR:-$HOME/.cache/tabmesh/tools}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen version Cargo.lock resolved (the CLI must be exactly this version).
locked_wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock"
}

wasm_bindgen_bin_dir() {
    echo "$TOOLS_DIR/wasm-bindgen-$(locked_wasm_bindgen_version)/bin"
}

# Phase timing: `phase NAME` starts a phase (ending the previous one); `phase_table` prints them.
PHASE_NAMES=()
PHASE_SECS=()
_phase_start=""
_phase_name=""
phase_end() {
    if [ -n "$_phase_name" ]; then
        PHASE_NAMES+=("$_phase_name")
        PHASE_SECS+=($(( $(date +%s) - _phase_start )))
        _phase_name=""
    fi
}
phase() {
    phase_end
    _phase_name="$1"
    _phase_start=$(date +%s)
    say "$1"
}
phase_table() {
    phase_end
    local total=0 i
    printf '\n%-60s %8s\n' "phase" "seconds"
    printf '%-60s %8s\n' "------------------------------------------------------------" "--------"
    for i in "${!PHASE_NAMES[@]}"; do
        printf '%-60s %8d\n' "${PHASE_NAMES[$i]}" "${PHASE_SECS[$i]}"
        total=$(( total + PHASE_SECS[i] ))
    done
    printf '%-60s %8d\n' "total" "$total"
}
