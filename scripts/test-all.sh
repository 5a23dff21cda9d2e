#!/usr/bin/env bash
# Tollgate: run every check and test. This is THE test command (README, CI's .ci/run).
#
#   scripts/test-all.sh
#
# 1. starts PostgreSQL and Redis (installing them if missing); fails if either cannot
#    be brought up: the store, gateway and limits tests run on them
# 2. cargo fmt --check, cargo clippy -D warnings, cargo test --workspace (store tests on
#    SQLite and PostgreSQL), then the gateway suite again with every gateway on
#    PostgreSQL (TOLLGATE_TEST_DATABASE=postgres)
# 3. cargo build -p tollgate -p mock-upstream, then the end-to-end suite in e2e/ (pytest,
#    real openai and anthropic SDKs) against the real binaries, in the venv e2e/.venv
#    (created/updated here).
# 4. the dashboard's browser tests in e2e/browser (node:test, playwright-core from npm,
#    Debian's chromium, installed with apt-get when missing) against the same binary.
#
# Needs: the Rust toolchain (with rustfmt and clippy), Python >= 3.11, network access to
# crates.io, PyPI and npm, node >= 20. Debian packages it lacks (python3-venv, chromium) it
# installs with apt-get.
# Exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

START=$(date +%s)
section() { printf '\n==== %s ==== (+%ss)\n' "$*" "$(( $(date +%s) - START ))"; }
note() { printf '  %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_python() {
  local c
  for c in python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null &&
      "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}
PY="$(find_python)" || die "Python >= 3.11 not found"

# ---------------------------------------------------------------------------------------
section "services: PostgreSQL and Redis"

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
pg_url_ok() { psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }
# psql as the postgres superuser over the local socket (peer authentication).
as_postgres_psql() { as_root runuser -u postgres -- psql -Atqc "$1" >/dev/null 2>&1; }

start_postgres() {
  if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null ||
    { ! pg_up && ! command -v pg_ctlcluster >/dev/null; }; then
    note "PostgreSQL: installing postgresql (Debian package)"
    apt_install postgresql ||
      die "PostgreSQL is needed (the store and gateway tests run on it) and cannot be installed: install postgresql"
  fi
  if pg_up; then
    note "PostgreSQL: already running on 127.0.0.1:5432"
  else
    local ver
    ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
    if [ -z "$ver" ]; then
      ver="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
      note "PostgreSQL: creating cluster $ver/main"
      as_root pg_createcluster "$ver" main >/dev/null || die "cannot create a PostgreSQL cluster ($ver/main)"
    fi
    note "PostgreSQL: starting cluster $ver/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do
      pg_up && break
      sleep 1
    done
    pg_up || die "PostgreSQL did not come up on 127.0.0.1:5432 (the store and gateway tests need it): see /var/log/postgresql/"
    note "PostgreSQL: running"
  fi
  local url="${TOLLGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  if ! pg_url_ok "$url" && [ -z "${TOLLGATE_TEST_POSTGRES_URL:-}" ]; then
    # A fresh server: create the test database; without trust authentication on
    # loopback, give the postgres role a password for the tests.
    as_postgres_psql "CREATE DATABASE test" || true
    if ! pg_url_ok "$url"; then
      note "PostgreSQL: setting a password on role postgres for the tests"
      as_postgres_psql "ALTER ROLE postgres PASSWORD 'tollgate-test'" || true
      url="postgres://postgres:tollgate-test@127.0.0.1:5432/test"
    fi
  fi
  pg_url_ok "$url" ||
    die "PostgreSQL is up but ${url/:tollgate-test@/:***@} does not connect: create the database, or set TOLLGATE_TEST_POSTGRES_URL"
  export TOLLGATE_TEST_POSTGRES_URL="$url"
  note "PostgreSQL: tests use ${url/:tollgate-test@/:***@}"
}

redis_up() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null
  fi
}

start_redis() {
  if redis_up; then
    note "Redis: already running on 127.0.0.1:6379"
  else
    if ! command -v redis-server >/dev/null; then
      note "Redis: installing redis-server (Debian package)"
      apt_install redis-server || die "Redis is needed (limits tests) and cannot be installed: install redis-server"
    fi
    note "Redis: starting"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      >/dev/null || true
    for _ in $(seq 1 20); do
      redis_up && break
      sleep 0.5
    done
    redis_up || die "Redis did not come up on 127.0.0.1:6379 (the limits tests need it)"
    note "Redis: running"
  fi
  export TOLLGATE_TEST_REDIS_URL="${TOLLGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
}

start_postgres
start_redis

# ---------------------------------------------------------------------------------------
section "cargo fmt --all -- --check"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt is missing (rustup component add rustfmt)"
cargo fmt --all -- --check || die "formatting: run 'cargo fmt --all'"
note "ok"

section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --version >/dev/null 2>&1 || die "clippy is missing (rustup component add clippy)"
cargo clippy --workspace --all-targets --locked -- -D warnings || die "clippy"

section "cargo test --workspace"
cargo test --workspace --locked || die "cargo test"

section "cargo test -p tollgate --test gateway, every gateway on PostgreSQL"
TOLLGATE_TEST_DATABASE=postgres cargo test -p tollgate --test gateway --locked ||
  die "cargo test --test gateway on PostgreSQL"

section "cargo build -p tollgate -p mock-upstream"
cargo build -p tollgate -p mock-upstream --locked || die "cargo build -p tollgate -p mock-upstream"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps --locked |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export TOLLGATE_BIN="$TARGET_DIR/debug/tollgate"
export MOCK_UPSTREAM_BIN="$TARGET_DIR/debug/mock-upstream"
[ -x "$TOLLGATE_BIN" ] || die "no binary at $TOLLGATE_BIN"
[ -x "$MOCK_UPSTREAM_BIN" ] || die "no binary at $MOCK_UPSTREAM_BIN"
note "gateway:       $TOLLGATE_BIN"
note "mock upstream: $MOCK_UPSTREAM_BIN (the e2e Anthropic provider's upstream)"

# ---------------------------------------------------------------------------------------
section "e2e: Python venv (e2e/.venv)"

VENV="$ROOT/e2e/.venv"
REQ="$ROOT/e2e/requirements.txt"

venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; }
if ! venv_ok; then
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    note "python venv module missing: installing python3-venv with apt-get"
    rm -rf "$VENV"
    apt_install python3-venv "python$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv" ||
      apt_install python3-venv || die "cannot install python3-venv"
    "$PY" -m venv "$VENV" || die "cannot create $VENV"
  fi
  note "created $VENV with $("$VENV/bin/python" --version)"
fi
REQ_HASH="$( (cat "$REQ"; "$VENV/bin/python" --version) | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_HASH" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQ" ||
    die "pip install -r e2e/requirements.txt"
  echo "$REQ_HASH" >"$VENV/.requirements.sha256"
  note "installed e2e/requirements.txt"
else
  note "e2e/requirements.txt already installed"
fi

section "e2e: pytest (real binaries, real openai and anthropic SDKs)"
cd "$ROOT/e2e"
"$VENV/bin/python" -m pytest || die "e2e tests"
cd "$ROOT"

# ---------------------------------------------------------------------------------------
section "e2e: dashboard in headless Chromium (e2e/browser, node:test + playwright-core)"
# Debian's Chromium drives the browser; nothing downloads a browser at test time.
if [ ! -x /usr/bin/chromium ]; then
  note "installing Debian chromium"
  apt_install chromium fonts-dejavu-core || die "Chromium is needed for the dashboard tests: apt-get install chromium"
fi
command -v node >/dev/null && command -v npm >/dev/null || die "node (>= 20) and npm are needed for the dashboard tests"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "node >= 20 is needed for the dashboard tests (found $(node --version))"
cd "$ROOT/e2e/browser"
npm ci --no-audit --no-fund --loglevel=error || die "npm ci in e2e/browser"
TOLLGATE_BIN="$TOLLGATE_BIN" npm test --silent || die "dashboard browser tests"
note "screenshots: e2e/browser/screenshots/"
cd "$ROOT"

section "all checks passed in $(( $(date +%s) - START ))s"
