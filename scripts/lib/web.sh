# shellcheck shell=bash
# Tools of the browser POS, installed on first use (sourced after common.sh):
#   ensure_wasm_target    rustup target wasm32-unknown-unknown
#   ensure_wasm_bindgen   wasm-bindgen-cli at exactly the version Cargo.lock pins for wasm-bindgen
#   ensure_chromium       Debian's chromium + chromium-driver, for the browser tests and bench
# We bundle with wasm-bindgen alone (scripts/build-web.sh) rather than trunk: trunk adds a
# 13-minute install and downloads its tools from GitHub, which this network cannot reach.

# The wasm-bindgen version Cargo.lock resolved (the CLI must match it exactly).
wasm_bindgen_locked_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' \
        "$REPO_ROOT/Cargo.lock"
}

ensure_wasm_target() {
    if command -v rustup >/dev/null 2>&1; then
        if ! rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
            info "adding the wasm32 target: rustup target add wasm32-unknown-unknown"
            rustup target add wasm32-unknown-unknown
        fi
    elif [[ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]]; then
        die "the wasm32-unknown-unknown target is missing: rustup target add wasm32-unknown-unknown"
    fi
}

ensure_wasm_bindgen() {
    local want have=''
    want="$(wasm_bindgen_locked_version)"
    [[ -n "$want" ]] || die "wasm-bindgen is not in Cargo.lock; is web/ in the workspace?"
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    if command -v wasm-bindgen >/dev/null 2>&1; then
        have="$(wasm-bindgen --version | awk '{ print $2 }')"
    fi
    if [[ "$have" != "$want" ]]; then
        # No --locked: its lock file wants a webpki-roots release the registry lacks.
        info "installing wasm-bindgen-cli $want (about 6 minutes, once): cargo install wasm-bindgen-cli --version $want"
        cargo install wasm-bindgen-cli --version "$want" \
            || die "could not install wasm-bindgen-cli $want; install it by hand with the command above"
    fi
}

# Paths of the browser and its driver (Debian's packages).
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
CHROMEDRIVER_BIN="${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"

ensure_chromium() {
    if [[ -x "$CHROMIUM_BIN" && -x "$CHROMEDRIVER_BIN" ]]; then
        return 0
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        info "installing Chromium and ChromeDriver: apt-get install -y chromium chromium-driver"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
            || die "could not install chromium and chromium-driver with apt-get"
    else
        die "Chromium and ChromeDriver are needed for the browser tests: sudo apt-get install chromium chromium-driver (or set CHROMIUM_BIN and CHROMEDRIVER_BIN)"
    fi
    export CHROMIUM_BIN CHROMEDRIVER_BIN
}
