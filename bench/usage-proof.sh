#!/usr/bin/env bash
# The usage-logging proof of issue 6 (SPEC §7): run closed-loop load at full speed
# against the gateway, stop it gracefully, and compare the rows in request_logs with
# the load generator's exact count of completed calls: they must be equal.
#
#   bash bench/usage-proof.sh                 SQLite, 30 s
#   bash bench/usage-proof.sh --postgres      PostgreSQL, stopped for 30 s mid-run
#   bash bench/usage-proof.sh --lock-sqlite   SQLite, its write lock held 30 s mid-run
#
# Environment: PROOF_SECONDS [30], PROOF_CONNECTIONS [64], PROOF_OUTAGE_S [30],
# PROOF_NO_BUILD=1 to reuse target/release binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_OF_LOAD=${PROOF_SECONDS:-30}
CONNS=${PROOF_CONNECTIONS:-64}
OUTAGE=${PROOF_OUTAGE_S:-30}
MODE=sqlite
[ "${1:-}" = --postgres ] && MODE=postgres
LOCK_SQLITE=0
[ "${1:-}" = --lock-sqlite ] && LOCK_SQLITE=1
# A longer run, so the outage sits in the middle of the load.
[ "$MODE" = postgres ] || [ "$LOCK_SQLITE" = 1 ] && SECONDS_OF_LOAD=${PROOF_SECONDS:-60}
WORK=$(mktemp -d /tmp/tollgate-proof.XXXXXX)
MOCK_PORT=18411
GW_PORT=18412
PIDS=()

log() { printf '[proof] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

pg_cluster() { ls /etc/postgresql | sort -V | tail -n1; }
pg() { pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main "$1"; }

if [ "${PROOF_NO_BUILD:-}" != 1 ]; then
  log "cargo build --release -p tollgate -p mock-upstream"
  (cd "$ROOT" && cargo build --release -p tollgate -p mock-upstream) >"$WORK/build.log" 2>&1 ||
    die "build failed, see $WORK/build.log"
fi
BIN=$ROOT/target/release

"$BIN/mock-upstream" --listen "127.0.0.1:$MOCK_PORT" --reply-words 12 >"$WORK/mock.log" 2>&1 &
PIDS+=($!)

case $MODE in
  sqlite) DB_URL="sqlite://$WORK/tollgate.db" ;;
  postgres)
    DB_NAME="tollgate_proof_$$"
    psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB_NAME" >/dev/null ||
      die "cannot create database $DB_NAME (is PostgreSQL up on 127.0.0.1:5432?)"
    DB_URL="postgres://postgres@127.0.0.1:5432/$DB_NAME"
    ;;
esac
cat >"$WORK/tollgate.toml" <<TOML
[server]
listen = "127.0.0.1:$GW_PORT"
[storage]
database_url = "$DB_URL"
spool_path = "$WORK/usage.spool"
[[providers]]
name = "proof"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
keys = [ { id = "proof-1", key_env = "PROOF_UPSTREAM_KEY" } ]
[[models]]
name = "mock-gpt"
provider = "proof"
input_per_1m = 0.15
output_per_1m = 0.60
[tiers.standard]
rpm = 0
rph = 0
TOML
export PROOF_UPSTREAM_KEY=sk-proof TOLLGATE_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export TOLLGATE_ADMIN_PASSWORD=proof-admin-password-1
KEY=$("$BIN/tollgate" keys create --name proof --json --config "$WORK/tollgate.toml" 2>"$WORK/keys.log" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || die "keys create failed, see $WORK/keys.log"

"$BIN/tollgate" serve --config "$WORK/tollgate.toml" >"$WORK/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && break; sleep 0.1; done

if [ "$MODE" = postgres ]; then
  (
    sleep $((SECONDS_OF_LOAD / 4))
    log "stopping PostgreSQL for ${OUTAGE}s"
    pg stop
    sleep "$OUTAGE"
    pg start
    log "PostgreSQL is back"
  ) &
  OUTAGE_PID=$!
fi

if [ "$LOCK_SQLITE" = 1 ]; then
  (
    sleep $((SECONDS_OF_LOAD / 4))
    log "holding SQLite's write lock for ${OUTAGE}s"
    python3 -c 'import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute("BEGIN IMMEDIATE"); time.sleep(float(sys.argv[2])); c.execute("ROLLBACK")' \
      "$WORK/tollgate.db" "$OUTAGE"
    log "SQLite's write lock released"
  ) &
  OUTAGE_PID=$!
fi

peak_rss() { awk '/^VmHWM:/ { print $2 }' "/proc/$GW/status"; }
log "$MODE: $CONNS connections for ${SECONDS_OF_LOAD}s"
RESULT=$("$BIN/loadgen" --addr "127.0.0.1:$GW_PORT" --key "$KEY" --connections "$CONNS" --duration "$SECONDS_OF_LOAD")
[ -n "${OUTAGE_PID:-}" ] && wait "$OUTAGE_PID"
RSS_KB=$(peak_rss)
log "load: $RESULT"
log "stopping the gateway (SIGTERM) and waiting for it to flush"
kill -TERM "$GW"
wait "$GW" || die "the gateway exited with $?"

COMPLETED=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["failed"]==0, r; print(r["completed"])' "$RESULT") ||
  die "the load generator saw failed connections: $RESULT"
case $MODE in
  sqlite) ROWS=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from request_logs").fetchone()[0])' "$WORK/tollgate.db") ;;
  postgres) ROWS=$(psql -h 127.0.0.1 -U postgres -d "$DB_NAME" -tAc "select count(*) from request_logs") ;;
esac
SPOOLED=$(grep -c 'usage spool replayed' "$WORK/gateway.log" || true)
DROPPED=$(grep -c 'usage rows dropped\|usage row dropped' "$WORK/gateway.log" || true)
log "completed calls: $COMPLETED; rows logged: $ROWS; spool replays completed: $SPOOLED; drop reports: $DROPPED; peak RSS: $((RSS_KB / 1024)) MiB"
[ "$MODE" = postgres ] && psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE $DB_NAME" >/dev/null || true
[ "$COMPLETED" = "$ROWS" ] || die "rows ($ROWS) != completed calls ($COMPLETED); logs in $WORK"
log "PASS: every completed call has its row"
