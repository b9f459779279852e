#!/usr/bin/env bash
# Builds the browser POS bundle into web/dist (served by till-node with `--web web/dist`):
#   cargo build -p web for wasm32 (profile wasm-release) → wasm-bindgen --target web →
#   index.html, style.css, the JS glue, the WASM module, and sw.js, the service worker that
#   precaches exactly these files under a content-hash version.
# Installs the wasm32 target and wasm-bindgen-cli (matching Cargo.lock) when missing.
# Usage: ./scripts/build-web.sh [--dev]   (--dev: debug build, faster, larger)
# Environment: CI=true adds --locked; WEB_DIST overrides the output directory.
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=scripts/lib/web.sh
source "$REPO_ROOT/scripts/lib/web.sh"
cd "$REPO_ROOT"

profile=wasm-release
case "${1:-}" in
    '') ;;
    --dev) profile=dev ;;
    *) die "unknown argument: $1 (usage: $0 [--dev])" ;;
esac
cargo_flags=()
[[ "${CI:-}" == "true" ]] && cargo_flags+=(--locked)

ensure_wasm_target
ensure_wasm_bindgen

dist="${WEB_DIST:-$REPO_ROOT/web/dist}"
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
out_dir=debug
[[ "$profile" == dev ]] || out_dir=$profile

info "cargo build -p web --target wasm32-unknown-unknown --profile $profile"
cargo build "${cargo_flags[@]}" -p web --lib --target wasm32-unknown-unknown --profile "$profile"

staging="$(mktemp -d "${dist%/}.staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
# --remove-name-section: function names are a third of the module and only help a debugger.
wasm-bindgen --target web --no-typescript --remove-name-section --out-name pos-web --out-dir "$staging" \
    "$target_dir/wasm32-unknown-unknown/$out_dir/web.wasm"
cp web/index.html web/style.css "$staging/"

# The service worker precaches every file of the bundle; its version is their content hash,
# so any change installs a new cache and drops the old one.
files="$(cd "$staging" && find . -type f ! -name sw.js | sed 's|^\./||' | LC_ALL=C sort)"
version="$(cd "$staging" && cat $files | sha256sum | cut -c1-16)"
list='"./"'
for f in $files; do list="$list,\"./$f\""; done
sed -e "s|__VERSION__|$version|" -e "s|__PRECACHE__|[$list]|" web/sw.template.js >"$staging/sw.js"

rm -rf "$dist"
chmod 755 "$staging"
mv "$staging" "$dist"
trap - EXIT
wasm="$dist/pos-web_bg.wasm"
info "bundle $version in ${dist#"$REPO_ROOT"/}: wasm $(stat -c %s "$wasm") bytes, gzip $(gzip -9 -c "$wasm" | wc -c) bytes"
