# shellcheck shell=bash
# Shared helpers for the scripts in scripts/: repository root, banners, step timing.
# Sourced, never executed. Callers set `set -euo pipefail` themselves.

# Absolute path of the repository root (the directory holding the workspace Cargo.toml).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export REPO_ROOT

# Colour only when stdout is a terminal, so CI logs stay plain text.
# shellcheck disable=SC2034  # the colours are used by the scripts that source this file
if [[ -t 1 ]]; then
    C_BOLD=$'\033[1m'; C_RED=$'\033[31m'; C_GREEN=$'\033[32m'; C_RESET=$'\033[0m'
else
    C_BOLD=''; C_RED=''; C_GREEN=''; C_RESET=''
fi

# banner TEXT: a line that stands out in a long log.
banner() {
    printf '\n%s==> %s%s\n' "$C_BOLD" "$1" "$C_RESET"
}

# info TEXT / die TEXT: one-line status and a fatal error (to stderr, exit 1).
info() {
    printf '    %s\n' "$1"
}
die() {
    printf '%serror:%s %s\n' "$C_RED" "$C_RESET" "$1" >&2
    exit 1
}

# now_ms: wall-clock milliseconds, for step timings.
now_ms() {
    date +%s%3N
}

# format_ms MS: "12.3 s".
format_ms() {
    local ms=$1
    printf '%d.%d s' $((ms / 1000)) $(((ms % 1000) / 100))
}

# random_hex BYTES: a random hex string (for demo tokens); reads the kernel's CSPRNG.
random_hex() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}
