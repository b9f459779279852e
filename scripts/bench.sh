#!/usr/bin/env bash
# THE bench command: builds the hub and till binaries in release mode and runs the bench
# (tests/src/bin/bench), which starts real processes on loopback and prints a table of our
# figures beside brief.md §7's targets and the seeds' targets.
#
# Usage:
#   ./scripts/bench.sh                         every row, full counts
#   ./scripts/bench.sh --quick                 counts scaled down (a smoke run)
#   ./scripts/bench.sh --only latency,restart  a subset: latency, buffered, fleet, restart,
#                                              print, drain, pos (--only fiscal = print,drain: the
#                                              register and OFD emulators run in the bench; pos:
#                                              the browser POS in headless Chromium)
#   ./scripts/bench.sh --data DIR              where the restart row keeps its generated data
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/web.sh
source "$REPO_ROOT/scripts/lib/web.sh"
cd "$REPO_ROOT"

# The pos rows need the POS bundle and a browser (every run includes them unless --only
# leaves them out).
if [[ " $* " != *" --only "* ]] || [[ "$*" == *pos* ]]; then
    ensure_chromium
    banner "build the browser POS bundle"
    ./scripts/build-web.sh
fi

banner "build (release): hub, till-node and the bench"
cargo build --release -p tests --bins
banner "bench $*"
# `cargo run` finds the target directory (CARGO_TARGET_DIR included); the bench finds the
# e2e-hub and e2e-till-node binaries next to itself.
exec cargo run --quiet --release -p tests --bin bench -- "$@"
