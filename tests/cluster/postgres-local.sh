#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for Optuna storage (Debian's `postgresql`);
# fsync is off: fast, but not for results you cannot afford to lose in a power cut.
#
#   tests/cluster/postgres-local.sh start [DIR] [PORT]  # prints the SQLAlchemy URL on stdout
#   tests/cluster/postgres-local.sh status [DIR]        # exit 0 and the URL when running
#   tests/cluster/postgres-local.sh stop [DIR]          # stops the server, keeps DIR
#
# DIR (default $PGLOCAL_DIR or /tmp/robustbench-vit-pg) holds the whole cluster: data,
# socket, log and the URL. PORT defaults to $PGLOCAL_PORT or 55432. The first start runs
# initdb and creates the user and database `rbvit` with a random password; later starts
# reuse them. Start is idempotent (running -> prints the URL, exit 0). Used by the test
# fixture `postgres_url` (tests/conftest.py); by hand:
#
#   sudo apt-get install -y postgresql
#   url=$(tests/cluster/postgres-local.sh start)
#   robustbench-vit study run lr_sensitivity --storage "$url"
#   optuna-dashboard "$url"
#
# As root it runs the server as the `postgres` user (initdb refuses root); otherwise as you.
# It never touches the system clusters under /etc/postgresql.
set -euo pipefail

DIR=${2:-${PGLOCAL_DIR:-/tmp/robustbench-vit-pg}}
PORT=${3:-${PGLOCAL_PORT:-55432}}
DATA=$DIR/data

log() { echo "postgres-local: $*" >&2; }

die() { log "error: $*"; exit 1; }

find_bin() {  # the newest server binaries: PATH first, then Debian's versioned folders
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"; return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n $d && -x $d/pg_ctl ]] || return 1
  echo "$d"
}

as_owner() {  # run a command as the server's owner
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

is_running() { [[ -f $DATA/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

init_cluster() {
  mkdir -p "$DIR"
  if ((EUID == 0)); then chown postgres: "$DIR"; fi
  chmod 700 "$DIR"
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$DIR/password"
  chmod 600 "$DIR/password"
  if ((EUID == 0)); then chown postgres: "$DIR/password"; fi
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 || { tail -n 20 "$DIR/initdb.log" >&2; die "initdb failed"; }
}

create_role() {
  local pw
  pw=$(cat "$DIR/password")
  as_owner "$BIN/psql" -h "$DIR" -p "$(cat "$DIR/port")" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE rbvit LOGIN CREATEDB PASSWORD '$pw'" -c "CREATE DATABASE rbvit OWNER rbvit" >/dev/null
}

url() { echo "postgresql+psycopg2://rbvit:$(cat "$DIR/password")@127.0.0.1:$(cat "$DIR/port")/rbvit"; }

cmd_start() {
  local t0=$SECONDS fresh=0
  BIN=$(find_bin) || die "PostgreSQL server binaries not found; install: apt-get install -y postgresql"
  ((EUID != 0)) || id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user"
  if is_running; then log "already running in $DIR"; url; return 0; fi
  [[ -f $DATA/PG_VERSION ]] || { init_cluster; fresh=1; }
  echo "$PORT" >"$DIR/port"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off" start >/dev/null ||
    { tail -n 20 "$DIR/server.log" >&2; die "server did not start on 127.0.0.1:$PORT"; }
  if ((fresh)); then create_role; fi
  log "running in $DIR on 127.0.0.1:$PORT (up in $((SECONDS - t0)) s)"
  url
}

cmd_stop() {
  BIN=$(find_bin) || die "PostgreSQL server binaries not found"
  is_running || { log "not running in $DIR"; return 0; }
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  log "stopped ($DIR)"
}

cmd_status() {
  BIN=$(find_bin) || die "PostgreSQL server binaries not found"
  if is_running; then url; return 0; fi
  echo "postgres-local: down ($DIR)"
  return 1
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status [DIR] [PORT]" >&2; exit 2 ;;
esac
