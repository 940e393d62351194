#!/usr/bin/env bash
# API load benchmark (issue: backend foundation): `wrk` against `GET /api/v1/projects` with a
# valid token, beside the same `wrk` against a bare axum route served by the same process, on
# the embedded SQLite database and — when DATABASE_URL is a postgres:// URL — on PostgreSQL.
#
#   apt-get install -y wrk                # Debian/Ubuntu; also needs curl and python3
#   bash backend/bench/load.sh
#   DATABASE_URL=postgres://postgres@127.0.0.1/bench bash backend/bench/load.sh
#   WRK_THREADS=2 WRK_CONNECTIONS=32 WRK_DURATION=10s BENCH_RUNS=3 bash backend/bench/load.sh
#
# The server is the `bench_serve` example (release build): the API exactly as `hivesync server`
# assembles it (every layer, logging at `info` to stderr like the server's default, sent to
# /dev/null here), and a bare axum route (`GET /` → "ok") on the next port. Each database gets
# BENCH_RUNS rounds of (API, bare route) back to back; every round is printed, then the medians
# and the ratio the target is about (API ≥ 50 % of the bare route's throughput at p99 ≤ 20 ms).
# BENCH_BIN runs another build of bench_serve (e.g. to compare before/after a change).
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-32}"
DURATION="${WRK_DURATION:-10s}"
RUNS="${BENCH_RUNS:-3}"
PORT="${BENCH_PORT:-7890}"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk (Debian/Ubuntu)" >&2; exit 2; }
if [[ -n "${BENCH_BIN:-}" ]]; then
  BIN="$BENCH_BIN"
else
  cargo build --release -q -p hivesync-backend --example bench_serve
  BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench_serve"
fi

# wrk's report → "req/s p50 p99 non-2xx" (latencies in milliseconds).
summary() {
  python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
p = {m.group(1): ms(m.group(2), m.group(3)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)}
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(rps, p.get("50"), p.get("99"), non2xx.group(1) if non2xx else 0)
'
}

load() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" | summary; }

run() {
  local label="$1" database_url="$2"
  local data; data="$(mktemp -d)"
  local db_env=(-u DATABASE_URL)
  [[ -n "$database_url" ]] && db_env=("DATABASE_URL=$database_url")
  env "${db_env[@]}" HIVESYNC_SERVER_JWT_SECRET="load-bench-secret-load-bench-secret-0" \
    "$BIN" "$data" "127.0.0.1:$PORT" >/dev/null 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local email="load-$(date +%s%N)@example.com"
  curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery\",\"name\":\"Load\"}" >/dev/null
  local token
  token="$(curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
  for i in 1 2 3 4 5; do
    curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/projects" -H 'content-type: application/json' \
      -H "authorization: Bearer $token" -d "{\"name\":\"load $i\"}" >/dev/null
  done
  # Warm-up of both routes, then the measured rounds.
  wrk -t"$THREADS" -c"$CONNS" -d2s -H "authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/projects" >/dev/null
  wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$((PORT + 1))/" >/dev/null
  local rounds=()
  for round in $(seq 1 "$RUNS"); do
    local api bare
    api="$(load -H "authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/projects")"
    bare="$(load "http://127.0.0.1:$((PORT + 1))/")"
    read -r api_rps api_p50 api_p99 api_bad <<<"$api"
    read -r bare_rps bare_p50 bare_p99 _ <<<"$bare"
    printf '%-8s round %s  API %8.0f req/s p50 %6.2f ms p99 %6.2f ms (non-2xx %s) | bare %8.0f req/s p50 %6.2f ms p99 %6.2f ms | load %s\n' \
      "$label" "$round" "$api_rps" "$api_p50" "$api_p99" "$api_bad" "$bare_rps" "$bare_p50" "$bare_p99" \
      "$(cut -d' ' -f1-3 /proc/loadavg)"
    rounds+=("$api_rps $api_p50 $api_p99 $bare_rps $bare_p50 $bare_p99")
  done
  printf '%s\n' "${rounds[@]}" | python3 -c "
import statistics, sys
cols = list(zip(*[map(float, line.split()) for line in sys.stdin if line.strip()]))
api, a50, a99, bare, b50, b99 = (statistics.median(c) for c in cols)
print(f'$label median   API {api:8.0f} req/s p50 {a50:6.2f} ms p99 {a99:6.2f} ms | bare {bare:8.0f} req/s p50 {b50:6.2f} ms p99 {b99:6.2f} ms')
ok = api >= 0.5 * bare and a99 <= 20
print(f'$label API/bare throughput: {100 * api / bare:.0f} %, p99 {a99:.1f} ms (target >= 50 % at p99 <= 20 ms: {\"met\" if ok else \"NOT met\"})')
"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

echo "wrk: $THREADS threads, $CONNS connections, $DURATION per route, $RUNS rounds; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
run sqlite ""
if [[ "${DATABASE_URL:-}" == postgres* ]]; then
  run postgres "$DATABASE_URL"
else
  echo "postgres: skipped (DATABASE_URL is not a postgres:// URL)"
fi
