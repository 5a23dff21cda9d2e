#!/usr/bin/env bash
# Benchmarks tollgate against a do-nothing nginx proxy and against the mock upstream
# itself, with the same load, in one run. See bench/README.md.
#
# Environment knobs (defaults in brackets):
#   BENCH_TARGETS   targets to measure ["direct nginx tollgate-open tollgate tollgate-redis"]
#   BENCH_DURATION  seconds measured per load scenario and round [10]
#   BENCH_ROUNDS    rounds over all targets; the report takes each figure's median [3]
#   BENCH_WARMUP    seconds of warm-up before each scenario [2]
#   BENCH_TTFB_COUNT  stream requests timed at 1 connection [2000]
#   BENCH_NO_BUILD  set to 1 to skip `cargo build --release`
#   BENCH_TOLLGATE_BIN  the gateway binary [target/release/tollgate]
#   BENCH_QUIET_WAIT  seconds to wait for an idle machine before measuring [180]
#   BENCH_SUSTAIN   seconds one more `tollgate` is kept under load (16 connections)
#                   after the rounds, measured in 15 s windows back to back [0: none]
# Exit: 0 all bars pass, 1 a bar fails, 2 the run itself went wrong.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TARGETS=${BENCH_TARGETS:-"direct nginx tollgate-open tollgate tollgate-redis"}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-2}
TTFB_COUNT=${BENCH_TTFB_COUNT:-2000}
SUSTAIN=${BENCH_SUSTAIN:-0}
SUSTAIN_WINDOW=15

# Ports on 127.0.0.1. nginx.conf repeats the first two.
MOCK_PORT=19000
NGINX_PORT=19001
TOLLGATE_PORT=19002
SERVER_CPU=0 # servers: the mock and the proxy under test
LOAD_CPU=1   # load generators: wrk and ttfb.py
UPSTREAM_KEY=sk-bench
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/tollgate-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
STARTED=() # every PID this script started, stopped on exit

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

stop_all() {
  local pid
  for pid in "${STARTED[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  STARTED=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------

ensure_tools() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v python3 >/dev/null || missing+=(python3)
  command -v taskset >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1 ||
    { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y "${missing[@]}" >>"$WORK/apt.log" 2>&1; } ||
    die "apt-get install ${missing[*]} failed, see $WORK/apt.log"
  # The Debian package may start a system nginx; this harness runs its own.
}

build() {
  [ "${BENCH_NO_BUILD:-}" = 1 ] && return
  local packages=(-p mock-upstream)
  [[ " $TARGETS " == *" tollgate"* ]] && packages+=(-p tollgate)
  log "cargo build --release ${packages[*]}"
  (cd "$ROOT" && cargo build --release "${packages[@]}") >"$WORK/build.log" 2>&1 ||
    die "build failed, see $WORK/build.log"
}

# --- processes ---------------------------------------------------------------------

# start NAME CPU COMMAND...: runs COMMAND pinned to CPU in the background; its PID
# goes to LAST_PID (not printed: a $(...) subshell would lose STARTED).
start() {
  local name=$1 cpu=$2
  shift 2
  taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# cpu_ticks PID...: utime+stime of the processes (all threads), in clock ticks.
cpu_ticks() {
  local total=0 pid stat
  for pid in "$@"; do
    stat=$(<"/proc/$pid/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# cpu_busy CPU: "busy total" clock ticks of one CPU since boot (/proc/stat).
cpu_busy() {
  awk -v cpu="cpu$1" '$1 == cpu { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6 }' /proc/stat
}

# rss_kb PID...: summed current resident set (VmRSS), in KiB.
rss_kb() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
  done
  echo "$total"
}

# hwm_kb PID...: summed peak resident set (VmHWM), in KiB.
hwm_kb() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")))
  done
  echo "$total"
}

# wait_quiet: waits (up to BENCH_QUIET_WAIT seconds) until the machine is idle, so
# that builds or tests running beside the benchmark do not end up in its figures.
wait_quiet() {
  local limit=${BENCH_QUIET_WAIT:-180} waited=0 b0 t0 b1 t1 pct
  while :; do
    read -r b0 t0 < <(awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat)
    sleep 2
    read -r b1 t1 < <(awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat)
    pct=$((100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1)))
    [ "$pct" -lt 10 ] && return
    if [ "$waited" -ge "$limit" ]; then
      log "the machine is still ${pct}% busy after ${limit}s: measuring anyway (see 'other load')"
      return
    fi
    [ "$waited" -eq 0 ] && log "the machine is ${pct}% busy with other work: waiting up to ${limit}s for quiet"
    waited=$((waited + 2))
  done
}

# --- measurements ------------------------------------------------------------------

# load TARGET SCENARIO PORT KEY CONNECTIONS STREAM(0|1) "PROXY_PIDS"
load() {
  local target=$1 scenario=$2 port=$3 key=$4 conns=$5 stream=$6 proxy_pids=$7
  local url="http://127.0.0.1:$port/v1/chat/completions"
  local wrk=(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" --timeout 5s -s "$BENCH_DIR/wrk.lua" "$url")
  log "$target $scenario: warm-up ${WARMUP}s, measure ${DURATION}s"
  if [ "$WARMUP" -gt 0 ]; then
    BENCH_KEY=$key BENCH_STREAM=$stream "${wrk[@]}" -d"${WARMUP}s" >/dev/null
  fi
  local proxy_before upstream_before proxy_after upstream_after out
  local cpu0_before cpu0_after cpu1_before cpu1_after load_cpu_s
  local file="$WORK/wrk-$target-$scenario.txt"
  # shellcheck disable=SC2086
  proxy_before=$(cpu_ticks $proxy_pids)
  upstream_before=$(cpu_ticks "$MOCK_PID")
  cpu0_before=$(cpu_busy "$SERVER_CPU")
  cpu1_before=$(cpu_busy "$LOAD_CPU")
  local TIMEFORMAT='%U %S'
  { time BENCH_KEY=$key BENCH_STREAM=$stream "${wrk[@]}" -d"${DURATION}s" >"$file"; } 2>"$file.time"
  cpu0_after=$(cpu_busy "$SERVER_CPU")
  cpu1_after=$(cpu_busy "$LOAD_CPU")
  # shellcheck disable=SC2086
  proxy_after=$(cpu_ticks $proxy_pids)
  upstream_after=$(cpu_ticks "$MOCK_PID")
  load_cpu_s=$(awk '{ print $1 + $2 }' "$file.time")
  out=$(<"$file")
  local json
  json=$(sed -n 's/^BENCH_JSON //p' <<<"$out")
  [ -n "$json" ] || die "wrk printed no summary for $target $scenario: $out"
  local proxy_ticks="" proxy_rss=""
  [ -n "$proxy_pids" ] && proxy_ticks=$((proxy_after - proxy_before))
  # shellcheck disable=SC2086
  [ -n "$proxy_pids" ] && proxy_rss=$(rss_kb $proxy_pids)
  python3 -c '
import json, sys
row = json.loads(sys.argv[1])
(target, scenario, conns, stream, clk_tck, proxy, upstream, rss,
 cpu0_before, cpu0_after, cpu1_before, cpu1_after, load_cpu_s) = sys.argv[2:]
def delta(before, after):
    b0, t0 = map(int, before.split())
    b1, t1 = map(int, after.split())
    return b1 - b0, max(1, t1 - t0)
busy0, window = delta(cpu0_before, cpu0_after)
busy1, _ = delta(cpu1_before, cpu1_after)
ours = (int(proxy) if proxy else 0) + int(upstream) + float(load_cpu_s) * int(clk_tck)
row.update(target=target, scenario=scenario, connections=int(conns), stream=stream == "1",
           clk_tck=int(clk_tck), proxy_ticks=int(proxy) if proxy else None,
           upstream_ticks=int(upstream), proxy_rss_kb=int(rss) if rss else None,
           load_cpu_s=float(load_cpu_s),
           cpu0_busy_pct=round(100 * busy0 / window, 1),
           other_load_pct=round(100 * max(0.0, busy0 + busy1 - ours) / window, 1))
print(json.dumps(row))' "$json" "$target" "$scenario" "$conns" "$stream" "$CLK_TCK" \
    "$proxy_ticks" "$((upstream_after - upstream_before))" "$proxy_rss" \
    "$cpu0_before" "$cpu0_after" "$cpu1_before" "$cpu1_after" "$load_cpu_s" >>"$RESULTS"
}

# ttfb TARGET PORT KEY
ttfb() {
  local target=$1 port=$2 key=$3
  log "$target ttfb-c1: $TTFB_COUNT stream requests on 1 connection"
  local json
  json=$(taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ttfb.py" --port "$port" --key "$key" --count "$TTFB_COUNT")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(target=sys.argv[2], scenario="ttfb-c1"); print(json.dumps(r))' \
    "$json" "$target" >>"$RESULTS"
}

# measure TARGET PORT KEY "PROXY_PIDS": every scenario against one target.
measure() {
  local target=$1 port=$2 key=$3 proxy_pids=$4
  taskset -c "$LOAD_CPU" python3 "$BENCH_DIR/ttfb.py" --port "$port" --key "$key" --check ||
    die "$target does not answer a stream request correctly (see $WORK/*.log)"
  load "$target" chat-c16 "$port" "$key" 16 0 "$proxy_pids"
  load "$target" chat-c64 "$port" "$key" 64 0 "$proxy_pids"
  load "$target" stream-c16 "$port" "$key" 16 1 "$proxy_pids"
  ttfb "$target" "$port" "$key"
  local proxy_hwm=null
  # shellcheck disable=SC2086
  [ -n "$proxy_pids" ] && proxy_hwm=$(hwm_kb $proxy_pids)
  printf '{"target":"%s","scenario":"rss","proxy_hwm_kb":%s,"upstream_hwm_kb":%s}\n' \
    "$target" "$proxy_hwm" "$(hwm_kb "$MOCK_PID")" >>"$RESULTS"
}

# sustain TARGET PORT KEY PID: one gateway kept under load at 16 connections for
# SUSTAIN seconds, in SUSTAIN_WINDOW-second windows back to back. Background work that
# grows with the rows stored (a periodic rescan, say) shows as windows slower than the
# rest; the rounds' fresh gateways never live long enough to meet it.
sustain() {
  local target=$1 port=$2 key=$3 pid=$4 window
  # load() reads these (bash scopes locals dynamically).
  local DURATION=$SUSTAIN_WINDOW WARMUP=0
  for window in $(seq $(((SUSTAIN + SUSTAIN_WINDOW - 1) / SUSTAIN_WINDOW))); do
    load "$target" "sustain-$window" "$port" "$key" 16 0 "$pid"
  done
}

# --- targets -----------------------------------------------------------------------

run_direct() {
  measure direct "$MOCK_PORT" "$UPSTREAM_KEY" ""
}

run_nginx() {
  port_free "$NGINX_PORT" || die "port $NGINX_PORT is taken"
  mkdir -p "$WORK/nginx"
  local master workers
  start nginx "$SERVER_CPU" nginx -p "$WORK/nginx" -c "$BENCH_DIR/nginx.conf"
  master=$LAST_PID
  wait_port "$NGINX_PORT" "$master" || die "nginx did not start, see $WORK/nginx.log"
  workers=$(cat /proc/"$master"/task/*/children)
  [ -n "$workers" ] || die "nginx has no worker process"
  # shellcheck disable=SC2086
  measure nginx "$NGINX_PORT" "$UPSTREAM_KEY" "$master $workers"
  kill -TERM "$master"
  wait "$master" 2>/dev/null || true
}

# run_tollgate NAME [sustain]: `tollgate` checks and counts limits and budgets on every call
# (the key has rpm/rph/tpm and daily/monthly budgets, and a global budget is set);
# `tollgate-open` has none (the foundation's figure); `tollgate-redis` is `tollgate`
# with its counters in Redis.
run_tollgate() {
  local name=$1
  port_free "$TOLLGATE_PORT" || die "port $TOLLGATE_PORT is taken"
  local dir=$WORK/$name bin=${BENCH_TOLLGATE_BIN:-$ROOT/target/release/tollgate}
  local redis="" limits=() tiers
  case $name in
    tollgate-open) tiers=$'[tiers.standard]\nrpm = 0\nrph = 0' ;;
    *) tiers=$'[budgets]\nglobal_daily = 1000000.0'
       limits=(--rpm 100000000 --rph 1000000000 --tpm 1000000000000 --daily-budget 1000000 --monthly-budget 10000000) ;;
  esac
  if [ "$name" = tollgate-redis ]; then
    redis='redis_url = "redis://127.0.0.1:6379"'
    (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null ||
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null ||
      die "tollgate-redis needs Redis on 127.0.0.1:6379"
  fi
  [ -x "$bin" ] || die "$bin is missing (build it, or leave tollgate out of BENCH_TARGETS)"
  rm -rf "$dir" # a fresh database every round
  mkdir -p "$dir"
  cat >"$dir/tollgate.toml" <<EOF
[server]
listen = "127.0.0.1:$TOLLGATE_PORT"

[storage]
database_url = "sqlite://$dir/tollgate.db"
$redis

[[providers]]
name = "bench"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
keys = [ { id = "bench-1", key_env = "BENCH_UPSTREAM_KEY" } ]

[[models]]
name = "mock-gpt"
provider = "bench"
upstream_model = "mock-gpt"
input_per_1m = 0.15
output_per_1m = 0.60

$tiers
EOF
  export BENCH_UPSTREAM_KEY=$UPSTREAM_KEY
  export TOLLGATE_ADMIN_PASSWORD=bench-admin-password
  TOLLGATE_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  export TOLLGATE_MASTER_KEY
  local created key pid
  created=$(cd "$dir" && "$bin" keys create --name bench --json "${limits[@]}" --config "$dir/tollgate.toml" 2>"$WORK/tollgate-keys.log") ||
    die "tollgate keys create failed, see $WORK/tollgate-keys.log"
  key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$created") ||
    die "unexpected output of tollgate keys create: $created"
  cd "$dir"
  start "$name" "$SERVER_CPU" "$bin" serve --config "$dir/tollgate.toml"
  pid=$LAST_PID
  cd - >/dev/null
  wait_port "$TOLLGATE_PORT" "$pid" || die "$name did not start, see $WORK/$name.log"
  if [ "${2:-}" = sustain ]; then
    sustain "$name" "$TOLLGATE_PORT" "$key" "$pid"
  else
    measure "$name" "$TOLLGATE_PORT" "$key" "$pid"
  fi
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

# --- main --------------------------------------------------------------------------

main() {
  ensure_tools
  build
  local machine commit
  commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
  machine="$(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  wait_quiet
  port_free "$MOCK_PORT" || die "port $MOCK_PORT is taken"
  start mock "$SERVER_CPU" "$ROOT/target/release/mock-upstream" \
    --listen "127.0.0.1:$MOCK_PORT" --reply-words 12 --chunk-delay-ms 0
  MOCK_PID=$LAST_PID
  wait_port "$MOCK_PORT" "$MOCK_PID" || die "the mock did not start, see $WORK/mock.log"
  : >"$RESULTS"
  local target
  # Every target in turn, ROUNDS times over: a host that slows down for a while (these
  # machines are shared) then disturbs one round of each target, not all of one.
  local round
  for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for target in $TARGETS; do
      case $target in
        direct) run_direct ;;
        nginx) run_nginx ;;
        tollgate | tollgate-open | tollgate-redis) run_tollgate "$target" ;;
        *) die "unknown target $target" ;;
      esac
    done
  done
  if [ "$SUSTAIN" -gt 0 ]; then
    log "tollgate kept under load for ${SUSTAIN}s"
    run_tollgate tollgate sustain
  fi
  stop_all
  local status=0
  {
    echo "## Tollgate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $machine. Commit: $commit. Load: wrk -t1, ${WARMUP}s warm-up + ${DURATION}s per scenario,"
    echo "$ROUNDS rounds over all targets (each figure: the median of the rounds; RSS and other load: the largest);"
    echo "servers pinned to CPU $SERVER_CPU, load to CPU $LOAD_CPU; mock replies 12 words, no delays."
    echo
  } >"$WORK/report.md"
  python3 "$BENCH_DIR/report.py" "$RESULTS" >>"$WORK/report.md" || status=$?
  cat "$WORK/report.md"
  log "raw results and logs: $WORK"
  return "$status"
}

main "$@"
