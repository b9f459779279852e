#!/usr/bin/env bash
# Duplicated code outside tests: the pairs of places in production sources that share six or
# more lines, as the `duplicates` clone detector reports them (the figure issue notes quote).
# Tests, test support, split-out test files and xtask are left out; everything else that git
# tracks under the workspace's crates is read.
#
# Usage: ./scripts/duplicates.sh [REV]   (default: the working tree; REV: that commit's tree)
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

command -v duplicates >/dev/null 2>&1 \
    || die "the duplicates clone detector is not on PATH (it ships with the team's tool library)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rev="${1:-}"
if [[ -n "$rev" ]]; then
    git archive "$rev" | tar -x -C "$work/" --wildcards '*.rs'
    src="$work"
else
    src="$REPO_ROOT"
fi
mkdir -p "$work/prod"
(cd "$src" && find . -name '*.rs' -not -path './target/*' -not -path './prod/*' | sed 's|^\./||') \
    | grep -v -E '^tests/|/tests/|/tests?(_[a-z_]+)?\.rs$|_tests\.rs$|^xtask/' \
    | while read -r file; do
        mkdir -p "$work/prod/$(dirname "$file")"
        cp "$src/$file" "$work/prod/$file"
    done
duplicates --repo "$work/prod" --most 200 --seconds 120
