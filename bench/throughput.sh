#!/usr/bin/env bash
# Throughput and memory benchmark: perfornium vs wrk and oha against nginx on 127.0.0.1.
#
# nginx (one worker process) runs on core 0; each load generator runs alone on core 1, with the same
# connection count for the same time, ROUNDS rounds (default 10) with the tools interleaved. We record
# successful requests per second of each tool's own measured duration (errors and non-2xx excluded for
# every tool), CPU microseconds per successful request ((user+sys) / requests, from GNU time), and peak
# RSS, and report the median with the min–max spread. A second part measures perfornium's memory per
# idle VU: 10 000 VUs that each make one request and then hold their keep-alive connection through a
# long think time, against 1 VU, same test; the run must count 10 000 requests and no error, so every
# idle VU really holds a connection (nginx and this script raise their open-file limits for that).
# Output: bench/results/throughput.md. Usage: bench/throughput.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-50}
ROUNDS=${ROUNDS:-10}
OUT=bench/results/throughput.md

install() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || missing+=(nginx-light)
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; fi
  command -v oha >/dev/null || cargo install oha --locked
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release -q
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_nginx() {
  WORK=$(mktemp -d)
  PORT=$(free_port)
  cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { listen 127.0.0.1:$PORT; location / { default_type text/plain; return 200 "hello"; } }
}
CONF
  taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" &
  NGINX=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && return; sleep 0.05; done
  echo "nginx did not start" >&2; exit 1
}

# Runs "$@" on core 1 under GNU time; sets USER_S SYS_S RSS_KB.
timed() {
  /usr/bin/time -f "%U %S %M" -o "$WORK/time" taskset -c 1 "$@" > "$WORK/stdout" 2> "$WORK/stderr"
  read -r USER_S SYS_S RSS_KB < "$WORK/time"
}

perf_test() {
  cat > "$WORK/t.yaml" <<YAML
name: bench
global: { base_url: "http://127.0.0.1:$PORT", timeout: 10000 }
load: { pattern: basic, virtual_users: $1, duration: ${2}s }
scenarios:
  - name: get
    think_time: "${3:-0}"
    steps:
      - { name: get, path: / }
YAML
}

row() { # tool successful-requests measured-seconds
  local cpu_us rps
  cpu_us=$(python3 -c "print(round(($USER_S+$SYS_S)*1e6/max($2,1),2))")
  rps=$(python3 -c "print($2/$3)")
  echo "| $1 | $(python3 -c "print(round($rps))") | $cpu_us | $((RSS_KB/1024)) |" >> "$WORK/rows"
  echo "$1 $rps $cpu_us" >> "$WORK/raw"
}

install
# 10 000 idle VUs hold 10 000 connections: the client needs that many descriptors (nginx raises its
# own with worker_rlimit_nofile).
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 11000 ] || { echo "open-file limit $(ulimit -n) is below the 11000 the idle-VU run needs" >&2; exit 1; }
start_nginx
trap 'kill $NGINX 2>/dev/null; rm -rf "$WORK"' EXIT
: > "$WORK/rows"; : > "$WORK/raw"
perf_test "$CONNS" "$SECS"
for r in $(seq "$ROUNDS"); do
  # wrk: "N requests in D s", minus socket errors and non-2xx/3xx responses.
  timed wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/"
  row wrk $(python3 - "$WORK/stdout" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
n, d, unit = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", t).groups()
secs = float(d) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[unit]
bad = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
bad += sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", t))
print(int(n) - bad, secs)
PY
)
  # oha: 2xx responses over its own measured total time.
  timed oha --no-tui -z "${SECS}s" -c "$CONNS" --output-format json "http://127.0.0.1:$PORT/"
  row oha $(python3 -c "import json; d=json.load(open('$WORK/stdout')); print(sum(v for k,v in d['statusCodeDistribution'].items() if k.startswith('2')), d['summary']['total'])")
  # perfornium: requests minus errors over the run's own duration.
  timed env TOKIO_WORKER_THREADS=1 ./target/release/perfornium run "$WORK/t.yaml" -o "$WORK/out"
  row perfornium $(python3 -c "import json; o=json.load(open('$WORK/out/summary.json')); print(o['overall']['count']-o['overall']['errors'], o['duration_s'])")
done

# Memory per idle VU: 10 000 VUs that sleep (think time) after one request, holding their keep-alive
# connection, vs 1 VU. Both runs must count every VU's request and no error.
idle_run() { # vus
  perf_test "$1" 6 "60s"
  timed ./target/release/perfornium run "$WORK/t.yaml" -o "$WORK/idle"
  python3 - "$WORK/idle/summary.json" "$1" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["overall"]
want = int(sys.argv[2])
if o["count"] != want or o["errors"] != 0:
    sys.exit(f"idle-VU run: {o['count']} requests and {o['errors']} errors, expected {want} and 0: not every VU holds a connection")
PY
}
idle_run 1; RSS_ONE=$RSS_KB
idle_run 10000; RSS_MANY=$RSS_KB
KIB_PER_VU=$(python3 -c "print(round(($RSS_MANY-$RSS_ONE)/9999,2))")

python3 - "$WORK/raw" "$OUT" "$SECS" "$CONNS" "$ROUNDS" "$RSS_ONE" "$RSS_MANY" "$KIB_PER_VU" "$WORK/rows" <<'PY'
import sys, statistics, collections, datetime, platform, subprocess
raw, out, secs, conns, rounds, one, many, per_vu, rows = sys.argv[1:]
by = collections.defaultdict(list)
for line in open(raw):
    tool, rps, cpu = line.split(); by[tool].append((float(rps), float(cpu)))
med = {t: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for t, v in by.items()}
spread = {t: (min(r for r, _ in v), max(r for r, _ in v), min(c for _, c in v), max(c for _, c in v)) for t, v in by.items()}
p = med["perfornium"]
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception: return "?"
with open(out, "w") as f:
    f.write(f"# Throughput benchmark\n\n{datetime.date.today()} on {platform.machine()}, `ROUNDS={rounds} bench/throughput.sh {secs} {conns}`: nginx (1 worker) pinned to core 0, each tool alone on core 1, {conns} connections, {secs} s, {rounds} rounds with the tools interleaved; successful requests only, over each tool's own measured duration. {ver(['wrk','-v']) or 'wrk'}; {ver(['oha','--version'])}.\n\n")
    f.write("## Medians (min–max over the rounds)\n\n| tool | req/s | CPU µs/request | perfornium req/s ratio | perfornium CPU ratio |\n|---|---|---|---|---|\n")
    for t in ("wrk", "oha", "perfornium"):
        r, c = med[t]
        lo_r, hi_r, lo_c, hi_c = spread[t]
        f.write(f"| {t} | {r:.0f} ({lo_r:.0f}–{hi_r:.0f}) | {c:.2f} ({lo_c:.2f}–{hi_c:.2f}) | {p[0]/r:.2f} | {p[1]/c:.2f} |\n")
    f.write("\n(ratio > 1 for req/s means perfornium is faster; ratio > 1 for CPU means perfornium spends more CPU per request.)\n\n")
    f.write("## Every round\n\n| tool | req/s | CPU µs/request | peak RSS MiB |\n|---|---|---|---|\n")
    f.write(open(rows).read())
    f.write(f"\n## Idle virtual users\n\nperfornium peak RSS with 1 VU: {int(one)//1024} MiB; with 10 000 VUs, each holding its keep-alive connection through a 60 s think time after one request (10 000 requests counted, no error): {int(many)//1024} MiB; **{per_vu} KiB per idle VU** (target ≤ 16).\n")
print(open(out).read())
PY
