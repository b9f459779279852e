#!/usr/bin/env bash
# THE demo command (README's first command): one store, S1, with a hub, two tills, an
# emulated cash register per till and an emulated OFD on this machine, a catalogue of optician
# goods and services, and the commands to try it.
#
# Builds the release binaries and the browser POS bundle (scripts/build-web.sh), sets up the
# hub under .demo/ (users and cashiers, two enrolled tills, the catalogue), starts `hub serve`,
# the OFD emulator, a register emulator per till (a Shtrih-M device on a pseudo-terminal linked
# at .demo/T1/kkt, its fiscal drive in .demo/T1/kkt-fn/) and two `till-node run` wired to them,
# each serving the POS page at its address; waits until each answers, prints what to open and
# what to type, then waits. Ctrl-C stops everything.
#
# Usage:
#   ./scripts/demo.sh          wipe .demo/ and set everything up afresh
#   ./scripts/demo.sh --keep   keep .demo/ from the last run (data, users, tokens, FN state;
#                              the OFD emulator keeps nothing and starts empty)
# Environment: DEMO_HUB_PORT (8080), DEMO_T1_PORT (8081), DEMO_T2_PORT (8082),
#   DEMO_OFD_PORT (8090), DEMO_T1_KKT_PORT (8091), DEMO_T2_KKT_PORT (8092).
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

KEEP=0
case "${1:-}" in
    '') ;;
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
esac

STORE=S1
HUB_PORT=${DEMO_HUB_PORT:-8080}
T1_PORT=${DEMO_T1_PORT:-8081}
T2_PORT=${DEMO_T2_PORT:-8082}
OFD_PORT=${DEMO_OFD_PORT:-8090}
T1_KKT_PORT=${DEMO_T1_KKT_PORT:-8091}
T2_KKT_PORT=${DEMO_T2_KKT_PORT:-8092}
HUB_URL="http://127.0.0.1:$HUB_PORT"
T1_URL="http://127.0.0.1:$T1_PORT"
T2_URL="http://127.0.0.1:$T2_PORT"
OFD_URL="http://127.0.0.1:$OFD_PORT"
T1_KKT_URL="http://127.0.0.1:$T1_KKT_PORT"
T2_KKT_URL="http://127.0.0.1:$T2_KKT_PORT"
# Fixed demo passwords, printed below: this is a demo on loopback, not a deployment.
ADMIN_PASSWORD=demo-admin-2026
MANAGER_PASSWORD=demo-manager-2026
CASHIER1_PIN=1111
CASHIER2_PIN=2222
STORE_MANAGER_PASSWORD=demo-store-manager-2026

DEMO_DIR=.demo
HUB_DATA=$DEMO_DIR/hub
LOG_DIR=$DEMO_DIR/logs
# Tokens made at setup, kept for --keep runs; readable by this user only.
SECRETS=$DEMO_DIR/secrets.env
CATALOGUE=$DEMO_DIR/catalogue.csv
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
HUB_BIN=$TARGET_DIR/release/hub
TILL_BIN=$TARGET_DIR/release/till-node
# The `fiscal` binary (register and OFD emulators) is built by the fiscal-emulators package.
FISCAL_BIN=$TARGET_DIR/release/fiscal

# Background processes we started, by pid, in start order; cleanup stops exactly these.
PIDS=()
NAMES=()

# Stops in reverse start order, each before the next, so that a till finishes talking to its
# register and to the OFD before they go away.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((${#PIDS[@]} > 0)); then
        banner "stopping the demo"
        local i
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
            kill -TERM "${PIDS[$i]}" 2>/dev/null || true
            wait "${PIDS[$i]}" 2>/dev/null || true
            info "${NAMES[$i]} stopped"
        done
        info "data kept in $DEMO_DIR/ (./scripts/demo.sh --keep reuses it)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_bg NAME CMD ARGS...: start a process in the background, output to .demo/logs/NAME.log.
start_bg() {
    local name=$1
    shift
    "$@" >"$LOG_DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    info "$name started (pid $!, log $LOG_DIR/$name.log)"
}

# wait_answers NAME URL: wait until GET URL answers, with any HTTP status, the process started
# last; or fail with the tail of its log.
wait_answers() {
    local name=$1 url=$2 pid=${PIDS[-1]} code i
    for ((i = 0; i < 120; i++)); do
        code="$(curl --silent --output /dev/null --max-time 2 --write-out '%{http_code}' \
            "$url" || true)"
        if [[ "$code" != "000" ]]; then
            info "$name answers at $url (HTTP $code)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            die "$name exited during start-up (log above: $LOG_DIR/$name.log)"
        fi
        sleep 0.25
    done
    tail -n 20 "$LOG_DIR/$name.log" >&2 || true
    die "$name did not answer $url within 30 s"
}

# wait_healthy NAME URL: wait until GET URL/v1/health answers (any HTTP status: a till whose
# OFD link is not up yet may call itself degraded).
wait_healthy() {
    wait_answers "$1" "$2/v1/health"
}

require_free_port() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        die "port $1 is already in use; free it or set $2 to another port"
    fi
}

# write_catalogue FILE: the demo catalogue. Prices are kopecks. Spectacle and contact lenses,
# frames and lens-care solutions are medical goods, VAT-exempt in Russia ("none"); sunglasses,
# accessories and services carry VAT 22 %. Services have no barcode.
write_catalogue() {
    cat >"$1" <<'CSV'
sku,ean,name,price,vat
FR-RB5154-2000,4607085100005,Оправа Ray-Ban RB5154 Clubmaster чёрная,1490000,none
FR-RB7047-5196,4607085101378,Оправа Ray-Ban RB7047 пластик матовая,1190000,none
FR-SIL-5500,4607085102740,Оправа Silhouette Momentum 5500 титан безободковая,2890000,none
FR-TF5401-001,4607085104119,Оправа Tom Ford FT5401 ацетат,2590000,none
FR-POL-D412,4607085105482,Оправа Polaroid PLD D412 металл,520000,none
FR-ENNI-1023,4607085106854,Оправа Enni Marco EM1023 пластик,450000,none
FR-KIDS-3021,4607085108223,Оправа детская гибкая Orange Kids 3021,290000,none
LN-HOYA-150-HV,4607085109596,Линза очковая Hoya Hilux 1.50 Hi-Vision LongLife,420000,none
LN-HOYA-167-BC,4607085110967,Линза очковая Hoya Nulux 1.67 BlueControl,1150000,none
LN-ESS-160-EZ,4607085112336,Линза очковая Essilor Eyezen Start 1.60 Crizal Sapphire,980000,none
LN-ESS-VARX-167,4607085113708,Линза прогрессивная Essilor Varilux X series 1.67,2450000,none
LN-ZEISS-160-PF,4607085115078,Линза очковая Zeiss ClearView 1.60 PhotoFusion X,1690000,none
LN-SEIKO-174,4607085116440,Линза очковая Seiko 1.74 SCC асферическая,2100000,none
LN-STOCK-156,4607085117812,Линза очковая 1.56 стоковая HMC,120000,none
CL-ACU-OASYS-6,4607085119182,Контактные линзы Acuvue Oasys 6 шт.,245000,none
CL-ACU-1DAY-30,4607085120553,Контактные линзы 1-Day Acuvue Moist 30 шт.,235000,none
CL-AIROPTIX-6,4607085121925,Контактные линзы Air Optix plus HydraGlyde 6 шт.,265000,none
CL-DAILIES-T1-30,4607085123295,Контактные линзы Dailies Total1 30 шт.,390000,none
CL-BIOF-TORIC-3,4607085124667,Контактные линзы Biofinity Toric 3 шт.,295000,none
CL-OPTIFREE-355,4607085126036,Раствор Opti-Free Express 355 мл,79000,none
CL-RENU-360,4607085127408,Раствор ReNu MultiPlus 360 мл,65000,none
SG-RB3025-001,4607085128771,Солнцезащитные очки Ray-Ban Aviator RB3025,1790000,vat22
SG-POL-6125,4607085130149,Солнцезащитные очки Polaroid PLD 6125 поляризационные,690000,vat22
SG-OAK-9208,4607085131511,Солнцезащитные очки Oakley Radar EV OO9208,2290000,vat22
AC-CASE-HARD,4607085132884,Футляр для очков жёсткий,45000,vat22
AC-CLOTH-MF,4607085134253,Салфетка из микрофибры,15000,vat22
SV-EYE-TEST,,Проверка зрения (компьютерная диагностика и подбор очков),150000,vat22
SV-CL-FIT,,Подбор контактных линз с обучением,200000,vat22
SV-GLAZING,,Изготовление очков (вставка линз в оправу),90000,vat22
SV-REPAIR,,Ремонт оправы (замена винта и носоупоров),50000,vat22
SV-ADJUST,,Подгонка оправы по лицу,30000,vat22
CSV
}

# create_user NAME ROLE PASSWORD [ARGS...]: the hub reads the password (a cashier's PIN) from
# stdin, never from argv. Cashiers and store managers (--store) reach the store's tills.
create_user() {
    local name=$1 role=$2 secret=$3
    shift 3
    printf '%s\n' "$secret" | "$HUB_BIN" admin create-user "$name" --role "$role" \
        --data "$HUB_DATA" "$@" >/dev/null || die "hub admin create-user $name failed"
    info "hub user $name (role $role${1:+ $*})"
}

# enroll_till TILL: print the till's hub token (the hub prints it on stdout).
enroll_till() {
    local token
    token="$("$HUB_BIN" admin enroll-till --store "$STORE" --till "$1" --data "$HUB_DATA" \
        | tr -d '[:space:]')" || die "hub admin enroll-till --till $1 failed"
    [[ -n "$token" ]] || die "hub admin enroll-till printed no token for $1"
    printf '%s\n' "$token"
}

# setup_hub: users, tills and catalogue; writes the tokens to $SECRETS.
setup_hub() {
    banner "setting up store $STORE in $DEMO_DIR/"
    mkdir -p "$HUB_DATA"
    create_user admin admin "$ADMIN_PASSWORD"
    create_user manager manager "$MANAGER_PASSWORD"
    create_user ivanova cashier "$CASHIER1_PIN" --store "$STORE"
    create_user petrov cashier "$CASHIER2_PIN" --store "$STORE"
    create_user smirnova manager "$STORE_MANAGER_PASSWORD" --store "$STORE"
    T1_HUB_TOKEN="$(enroll_till T1)"
    T2_HUB_TOKEN="$(enroll_till T2)"
    info "tills T1 and T2 enrolled in $STORE"
    T1_ADMIN_TOKEN="$(random_hex 16)"
    T2_ADMIN_TOKEN="$(random_hex 16)"
    write_catalogue "$CATALOGUE"
    "$HUB_BIN" catalogue import --store "$STORE" "$CATALOGUE" --data "$HUB_DATA" \
        || die "hub catalogue import failed"
    info "catalogue imported: $(($(wc -l <"$CATALOGUE") - 1)) items from $CATALOGUE"
    (
        umask 077
        printf 'T1_HUB_TOKEN=%q\nT2_HUB_TOKEN=%q\nT1_ADMIN_TOKEN=%q\nT2_ADMIN_TOKEN=%q\n' \
            "$T1_HUB_TOKEN" "$T2_HUB_TOKEN" "$T1_ADMIN_TOKEN" "$T2_ADMIN_TOKEN" >"$SECRETS"
    )
}

command -v cargo >/dev/null 2>&1 || die "cargo not found. Install Rust with rustup: https://rustup.rs"
command -v curl >/dev/null 2>&1 || die "curl not found (Debian: apt-get install -y curl)"
require_free_port "$HUB_PORT" DEMO_HUB_PORT
require_free_port "$T1_PORT" DEMO_T1_PORT
require_free_port "$T2_PORT" DEMO_T2_PORT
require_free_port "$OFD_PORT" DEMO_OFD_PORT
require_free_port "$T1_KKT_PORT" DEMO_T1_KKT_PORT
require_free_port "$T2_KKT_PORT" DEMO_T2_KKT_PORT

banner "building release binaries: cargo build --release -p hub -p till-node -p fiscal-emulators"
cargo build --release -p hub -p till-node -p fiscal-emulators
banner "building the browser POS: ./scripts/build-web.sh"
"$REPO_ROOT/scripts/build-web.sh"

if ((KEEP)) && [[ -f "$SECRETS" ]]; then
    banner "reusing $DEMO_DIR/ from the last run (--keep)"
    # shellcheck source=/dev/null
    source "$SECRETS"
else
    rm -rf "$DEMO_DIR"
    mkdir -p "$DEMO_DIR"
    setup_hub
fi
mkdir -p "$LOG_DIR"

banner "starting the hub, the OFD emulator, the register emulators and the tills"
start_bg hub "$HUB_BIN" serve --listen "127.0.0.1:$HUB_PORT" --data "$HUB_DATA"
wait_healthy hub "$HUB_URL"

start_bg ofd "$FISCAL_BIN" ofd-emulator --listen "127.0.0.1:$OFD_PORT"
wait_answers ofd "$OFD_URL/control/stats"

# start_register TILL CONTROL_PORT: the till's register emulator: a Shtrih-M device on a
# pseudo-terminal linked at .demo/TILL/kkt, its fiscal drive (FN) state in .demo/TILL/kkt-fn/.
start_register() {
    local link=$DEMO_DIR/$1/kkt
    mkdir -p "$DEMO_DIR/$1"
    # A link left behind by a killed run must not pass for the new one below.
    rm -f "$link"
    start_bg "kkt-$1" "$FISCAL_BIN" register-emulator --pty-link "$link" \
        --control "127.0.0.1:$2" --state "$DEMO_DIR/$1/kkt-fn"
    wait_answers "kkt-$1" "http://127.0.0.1:$2/state"
    # The emulator makes the link before it serves the control API; check anyway.
    [[ -L "$link" && -e "$link" ]] || die "kkt-$1 answers but made no pty link at $link"
    info "kkt-$1 pty linked at $link -> $(readlink "$link")"
}
start_register T1 "$T1_KKT_PORT"
start_register T2 "$T2_KKT_PORT"

# start_till TILL PORT HUB_TOKEN ADMIN_TOKEN: the tokens go in through the environment
# (TILL_NODE_HUB_TOKEN / TILL_NODE_ADMIN_TOKEN, the same settings as --hub-token /
# --admin-token) so that they do not show in `ps`. The till prints on its register's pty and
# sends the fiscal documents to the OFD emulator.
start_till() {
    TILL_NODE_HUB_TOKEN=$3 TILL_NODE_ADMIN_TOKEN=$4 start_bg "till-$1" "$TILL_BIN" run \
        --listen "127.0.0.1:$2" --data "$DEMO_DIR/$1" --store "$STORE" --till "$1" \
        --hub "$HUB_URL" --register "serial:$DEMO_DIR/$1/kkt" --ofd "$OFD_URL" \
        --web "$REPO_ROOT/web/dist"
    wait_healthy "till-$1" "http://127.0.0.1:$2"
}
start_till T1 "$T1_PORT" "$T1_HUB_TOKEN" "$T1_ADMIN_TOKEN"
start_till T2 "$T2_PORT" "$T2_HUB_TOKEN" "$T2_ADMIN_TOKEN"

# The first example receipt uses a fixed Idempotency-Key so that running it twice shows the
# original result again instead of a second sale; the second one takes a fresh key each time.
cat <<INFO

${C_BOLD}OpticsERP Edge demo is running: store $STORE, hub + tills T1, T2, registers, OFD.${C_RESET}

  Hub          $HUB_URL
  Till T1      $T1_URL   register emulator $T1_KKT_URL (pty $DEMO_DIR/T1/kkt)
  Till T2      $T2_URL   register emulator $T2_KKT_URL (pty $DEMO_DIR/T2/kkt)
  OFD emulator $OFD_URL   (the fiscal data operator both tills send their documents to)

  ${C_BOLD}Cashier's POS in the browser: open $T1_URL/ (or $T2_URL/)${C_RESET}
    PIN $CASHIER1_PIN (ivanova) or $CASHIER2_PIN (petrov); a discount above 10 % needs the store
    manager's secret $STORE_MANAGER_PASSWORD (smirnova). Scan = type an EAN and Enter, e.g.
    4607085132884 (case) or 4607085134253 (cloth). Stop till T1 to see the page keep selling.

  Hub users    admin / $ADMIN_PASSWORD      manager / $MANAGER_PASSWORD
  Till admin   T1: $T1_ADMIN_TOKEN   T2: $T2_ADMIN_TOKEN
  Data, logs   $DEMO_DIR/   $LOG_DIR/*.log

Try it (copy and paste):

  # open a cash session on till T1 (the register opens its shift)
  curl -s -X POST $T1_URL/v1/session/open -H 'Content-Type: application/json' \\
    -d '{"cashier":"Иванова А. С.","opening_cash":0}'

  # sell an eye test for 1 500,00 ₽ cash: "printed" with the register's fiscal_doc (FD, sign);
  # run it twice: same key, same receipt, no double sale
  curl -s -X POST $T1_URL/v1/kkt/receipt -H 'Content-Type: application/json' \\
    -H 'Idempotency-Key: 3f6c2a9e-8d1b-4c57-9a0e-5b7d2e4f1c01' \\
    -d '{"pos_id":"T1","type":"sale","items":[{"sku":"SV-EYE-TEST","name":"Проверка зрения","qty":1,"price":150000,"vat":"vat22"}],"payments":[{"method":"cash","amount":150000}]}'

  # what the register made (shift_open, receipt, ...) and what the OFD acknowledged
  curl -s $T1_KKT_URL/documents
  curl -s $OFD_URL/control/received

  # in a second terminal: the fiscal buffer (current_queued = not yet acknowledged by the OFD),
  # stages, network and circuit breaker state
  watch -n 1 curl -s $T1_URL/v1/kkt/buffer/status

  # take the OFD down, then sell (a fresh key each time): still "printed", but current_queued
  # grows, and after 5 failed sends (about a minute) circuit_state is OPEN
  curl -s -X POST $OFD_URL/control/mode -H 'Content-Type: application/json' -d '{"mode":"down"}'
  curl -s -X POST $T1_URL/v1/kkt/receipt -H 'Content-Type: application/json' \\
    -H "Idempotency-Key: \$(cat /proc/sys/kernel/random/uuid)" \\
    -d '{"pos_id":"T1","type":"sale","items":[{"sku":"AC-CASE-HARD","name":"Футляр для очков","qty":1,"price":45000,"vat":"vat22"}],"payments":[{"method":"card","amount":45000}]}'

  # bring the OFD up again: the till drains the backlog by itself when the breaker next
  # probes (60 s after it opened); or reset the breaker to retry now (admin). force=true also
  # syncs with the hub and wakes the drain.
  curl -s -X POST $OFD_URL/control/mode -H 'Content-Type: application/json' -d '{"mode":"up"}'
  curl -s -X POST $T1_URL/v1/kkt/circuit_breaker/reset -H 'Authorization: Bearer $T1_ADMIN_TOKEN'
  curl -s -X POST '$T1_URL/v1/kkt/buffer/sync?force=true' -H 'Authorization: Bearer $T1_ADMIN_TOKEN'

  # on the hub: log in, read the store's summary and the divergence report
  TOKEN=\$(curl -s -X POST $HUB_URL/api/v1/login -H 'Content-Type: application/json' \\
    -d '{"name":"admin","password":"$ADMIN_PASSWORD"}' | sed -E 's/.*"token":"([^"]+)".*/\\1/')
  curl -s $HUB_URL/api/v1/stores/$STORE/summary -H "Authorization: Bearer \$TOKEN"
  curl -s $HUB_URL/api/v1/divergence -H "Authorization: Bearer \$TOKEN"

Press Ctrl-C to stop.
INFO

# Wait until Ctrl-C, or until one of the processes dies (then say which and stop the rest).
wait -n "${PIDS[@]}" || true
for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        tail -n 20 "$LOG_DIR/${NAMES[$i]}.log" >&2 || true
        die "${NAMES[$i]} exited unexpectedly (log above: $LOG_DIR/${NAMES[$i]}.log)"
    fi
done
