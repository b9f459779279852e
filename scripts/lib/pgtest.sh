# shellcheck shell=bash
# A throwaway PostgreSQL cluster for the test run: find (or install) the server binaries,
# initdb into a fresh directory, start on a free loopback port with trust auth, export
# DATABASE_URL, and stop + delete everything on exit.
# Sourced by scripts/test.sh after scripts/lib/common.sh. Uses REPO_ROOT, info, die.

# Set by pg_find_binaries / pg_start; read by pg_stop.
PG_BIN=''
PG_DIR=''
PG_PORT=''

# pg_find_binaries: set PG_BIN to the directory holding initdb and pg_ctl.
# Debian keeps them off PATH under /usr/lib/postgresql/<version>/bin; take the newest version.
pg_find_binaries() {
    local candidate
    candidate="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sort -V | tail -n 1)"
    if [[ -n "$candidate" ]]; then
        PG_BIN="$(dirname "$candidate")"
    elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        PG_BIN="$(dirname "$(command -v initdb)")"
    else
        return 1
    fi
}

# pg_ensure_binaries: find the PostgreSQL server binaries, installing them with apt-get when
# we are root on a Debian-like system; otherwise fail and say what to do.
pg_ensure_binaries() {
    if pg_find_binaries; then
        return 0
    fi
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "PostgreSQL server binaries (initdb, pg_ctl) not found.
  Install them (Debian/Ubuntu: sudo apt-get install -y postgresql), or point the tests at an
  existing server: DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DB ./scripts/test.sh"
    fi
    info "PostgreSQL not found: apt-get install -y postgresql"
    # A fresh container often has no package lists yet; update once and retry.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    fi
    pg_find_binaries || die "apt-get installed postgresql but initdb is still missing"
}

# as_cluster_owner CMD ARGS...: run a command as the cluster's owner. initdb refuses to run as
# root, so as root the cluster belongs to the `postgres` system user (created by the package).
as_cluster_owner() {
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

# pg_free_port: print a loopback TCP port nobody listens on (random, 20000-59999).
pg_free_port() {
    local port i
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        # A refused connection means the port is free (the race until postgres binds it is
        # covered by pg_start's retry).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    return 1
}

# pg_make_dir: create PG_DIR, a fresh directory the cluster owner can write.
# Prefer target/ (ignored by git, next to the build); fall back to /tmp when the owner cannot
# reach it (e.g. a repository under /root) or the path is too long for a unix socket (~107 B).
pg_make_dir() {
    mkdir -p "$REPO_ROOT/target"
    PG_DIR="$(mktemp -d "$REPO_ROOT/target/pgtest-XXXXXX")"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 \
            || die "running as root, but there is no 'postgres' user to own the test cluster
  (initdb refuses root). Install the postgresql package, or run as an ordinary user."
        chown postgres: "$PG_DIR"
    fi
    if ((${#PG_DIR} > 80)) || ! as_cluster_owner test -w "$PG_DIR"; then
        rm -rf "$PG_DIR"
        PG_DIR="$(mktemp -d /tmp/pgtest-XXXXXX)"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$PG_DIR"
        fi
    fi
}

# pg_start: initdb + start a throwaway cluster, then export DATABASE_URL. Call pg_stop on exit.
pg_start() {
    pg_ensure_binaries
    pg_make_dir
    info "cluster directory: $PG_DIR"
    # Throwaway data: no fsync, C locale for deterministic sorting, trust auth on loopback only.
    as_cluster_owner "$PG_BIN/initdb" --pgdata="$PG_DIR/data" --username=postgres \
        --auth=trust --encoding=UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed (log above)"; }

    local attempt
    for attempt in 1 2 3; do
        PG_PORT="$(pg_free_port)" || die "no free TCP port found for the test PostgreSQL"
        # max_connections: nextest runs many test processes at once, each with its own pool.
        if as_cluster_owner "$PG_BIN/pg_ctl" --pgdata="$PG_DIR/data" --log="$PG_DIR/server.log" \
            --wait --timeout=60 --silent \
            -o "-p $PG_PORT -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c max_connections=300 \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off" start; then
            break
        fi
        info "start attempt $attempt on port $PG_PORT failed; server log tail:"
        tail -n 5 "$PG_DIR/server.log" >&2 || true
        PG_PORT=''
    done
    [[ -n "$PG_PORT" ]] || die "could not start the test PostgreSQL (log: $PG_DIR/server.log)"

    export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    # The same server for libpq tools (psql, pg_dump) started by the steps.
    export PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=postgres PGDATABASE=postgres
    "$PG_BIN/psql" "$DATABASE_URL" --no-psqlrc --quiet --tuples-only \
        --command='select 1' >/dev/null \
        || die "the test PostgreSQL started but does not answer on $DATABASE_URL"
    info "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') ready: $DATABASE_URL"
}

# pg_stop: stop the throwaway cluster and delete its directory. Safe to call twice and when
# nothing was started; never fails (it runs from an EXIT trap).
pg_stop() {
    if [[ -z "$PG_DIR" ]]; then
        return 0
    fi
    if [[ -f "$PG_DIR/data/postmaster.pid" ]]; then
        # Immediate: the data is thrown away, so there is nothing to flush.
        as_cluster_owner "$PG_BIN/pg_ctl" --pgdata="$PG_DIR/data" --mode=immediate --silent \
            --wait stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    info "test PostgreSQL stopped and removed ($PG_DIR)"
    PG_DIR=''
}

# redact_url URL: the URL with any password replaced, for printing (secrets never in logs).
redact_url() {
    sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"
}
