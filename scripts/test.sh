#!/usr/bin/env bash
# THE test command (README's second command; .ci/run calls it).
#
# Checks everything a change must pass, failing fast with a banner per step and the time each
# step took: formatting, clippy, the wasm32 compile check of the IO-free crates, the browser
# POS bundle, and every test of the workspace (cargo-nextest when installed), which includes the
# POS scenarios in headless Chromium (installed here with apt-get when missing, as are the
# wasm32 target and wasm-bindgen-cli). Database tests run against a throwaway
# PostgreSQL cluster started here and deleted on exit, unless DATABASE_URL is already set;
# REQUIRE_PG=1 is exported so those tests refuse to skip.
#
# Usage:
#   ./scripts/test.sh                 run every step
#   ./scripts/test.sh --pg-only       start the throwaway PostgreSQL, check it answers, stop it
#   ./scripts/test.sh --pg-only CMD…  run CMD with DATABASE_URL set to a throwaway PostgreSQL,
#                                     e.g. ./scripts/test.sh --pg-only cargo test -p hub
# Environment: DATABASE_URL (use this server instead of a throwaway one), CI=true (adds
# --locked to cargo so a stale Cargo.lock fails the run).
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/pgtest.sh
source "$REPO_ROOT/scripts/lib/pgtest.sh"
# shellcheck source=scripts/lib/web.sh
source "$REPO_ROOT/scripts/lib/web.sh"
cd "$REPO_ROOT"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

STEP_NAMES=()
STEP_TIMES=()
FAILED_STEP=''
CURRENT_STEP=''
STEP_PID=''
RUN_START_MS="$(now_ms)"

# run_step NAME CMD ARGS...: run one step under a banner, record its time, stop on failure.
# External commands run in the background and are waited for: bash runs a signal trap only
# after the foreground command ends, and `wait` lets Ctrl-C or a CI cancel stop the run at
# once (on_exit then stops the command). Shell functions run in this shell, because they
# export variables (DATABASE_URL).
run_step() {
    local name=$1
    shift
    CURRENT_STEP=$name
    banner "[$((${#STEP_NAMES[@]} + 1))] $name: $*"
    local start_ms rc=0
    start_ms="$(now_ms)"
    if declare -F "$1" >/dev/null; then
        "$@" || rc=$?
    else
        "$@" &
        STEP_PID=$!
        wait "$STEP_PID" || rc=$?
        STEP_PID=''
    fi
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$(($(now_ms) - start_ms))")
    if ((rc != 0)); then
        FAILED_STEP=$name
        exit "$rc"
    fi
    printf '%s    ok (%s)%s\n' "$C_GREEN" "$(format_ms "${STEP_TIMES[-1]}")" "$C_RESET"
}

# print_summary: one line per step that ran, then the total (also after a failure).
print_summary() {
    ((${#STEP_NAMES[@]} > 0)) || return 0
    banner "summary"
    local i
    for i in "${!STEP_NAMES[@]}"; do
        printf '    %-28s %10s\n' "${STEP_NAMES[$i]}" "$(format_ms "${STEP_TIMES[$i]}")"
    done
    printf '    %-28s %10s\n' "total" "$(format_ms $(($(now_ms) - RUN_START_MS)))"
}

on_exit() {
    local rc=$?
    if [[ -n "$STEP_PID" ]]; then
        FAILED_STEP="$CURRENT_STEP (interrupted)"
        kill -TERM "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
    pg_stop
    print_summary
    if [[ -n "$FAILED_STEP" ]]; then
        printf '\n%sFAILED at step: %s (exit code %d)%s\n' "$C_RED" "$FAILED_STEP" "$rc" "$C_RESET" >&2
    elif ((rc == 0)) && ((${#STEP_NAMES[@]} > 0)); then
        printf '\n%sall steps passed%s\n' "$C_GREEN" "$C_RESET"
    fi
    exit "$rc"
}
trap on_exit EXIT
# Turn Ctrl-C / kill into a normal exit so the EXIT trap removes the test cluster.
trap 'exit 130' INT
trap 'exit 143' TERM

# ensure_rust_toolchain: cargo, rustfmt, clippy and the wasm32 target, or say how to get them.
ensure_rust_toolchain() {
    command -v cargo >/dev/null 2>&1 \
        || die "cargo not found. Install Rust with rustup: https://rustup.rs"
    local has_rustup=0
    command -v rustup >/dev/null 2>&1 && has_rustup=1
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        ((has_rustup)) || die "cargo fmt / cargo clippy missing. Install rustfmt and clippy."
        info "adding rustfmt and clippy: rustup component add rustfmt clippy"
        rustup component add rustfmt clippy
    fi
    ensure_wasm_target
}

# ensure_database: use DATABASE_URL when given; otherwise make sure a cluster can be started
# (checked now, so a missing PostgreSQL fails in seconds, not after clippy).
ensure_database() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        info "using the PostgreSQL at DATABASE_URL=$(redact_url "$DATABASE_URL")"
    else
        pg_ensure_binaries
        info "PostgreSQL binaries: $PG_BIN"
    fi
}

start_throwaway_postgres() {
    if [[ -z "${DATABASE_URL:-}" ]]; then
        pg_start
    fi
}

# --pg-only: the PostgreSQL part alone, to try it or to run one crate's tests against it.
if [[ "${1:-}" == "--pg-only" ]]; then
    shift
    export REQUIRE_PG=1
    ensure_database
    run_step "start PostgreSQL" start_throwaway_postgres
    if (($# > 0)); then
        run_step "$1" "$@"
    else
        run_step "check PostgreSQL" "${PG_BIN:+$PG_BIN/}psql" "$DATABASE_URL" --no-psqlrc \
            --tuples-only --command='select version()'
    fi
    exit 0
fi
case "${1:-}" in
    '') ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
esac

CARGO_FLAGS=()
if [[ "${CI:-}" == "true" ]]; then
    CARGO_FLAGS+=(--locked)
fi
export REQUIRE_PG=1
# The browser POS scenarios refuse to skip when Chromium or the bundle is missing.
export REQUIRE_BROWSER=1

banner "preflight"
ensure_rust_toolchain
ensure_database
ensure_wasm_bindgen
ensure_chromium
info "$(cargo --version)"

run_step "format" cargo fmt --all --check
run_step "ops kit (promtool)" ./scripts/check-ops.sh
run_step "clippy" cargo clippy "${CARGO_FLAGS[@]}" --workspace --all-targets -- -D warnings
# The sans-IO crates must build for the browser (brief.md §2).
run_step "wasm32 build" cargo build "${CARGO_FLAGS[@]}" -p crdt-model -p sync-engine \
    -p till-api --target wasm32-unknown-unknown

# The browser half of web/ only compiles for wasm32: lint it there too.
run_step "clippy (web, wasm32)" cargo clippy "${CARGO_FLAGS[@]}" -p web \
    --target wasm32-unknown-unknown -- -D warnings
# The browser POS bundle (web/dist): the POS scenarios in the test run serve it from a till.
run_step "web bundle" ./scripts/build-web.sh

# The licence policy lives in deny.toml; the check runs where cargo-deny is installed.
if cargo deny --version >/dev/null 2>&1; then
    run_step "licences" cargo deny check licenses
else
    info "cargo-deny not installed: licence check skipped (cargo install cargo-deny)"
fi

run_step "start PostgreSQL" start_throwaway_postgres
if cargo nextest --version >/dev/null 2>&1; then
    run_step "tests (nextest)" cargo nextest run "${CARGO_FLAGS[@]}" --workspace
    # nextest does not run doctests.
    run_step "doctests" cargo test "${CARGO_FLAGS[@]}" --workspace --doc
else
    run_step "tests" cargo test "${CARGO_FLAGS[@]}" --workspace
fi

