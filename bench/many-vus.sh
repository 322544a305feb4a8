#!/usr/bin/env bash
# Many virtual users: memory of idle VUs that each hold a keep-alive connection, and whether many
# active VUs with think time keep their target rate without the scheduler falling behind.
#
# One process may hold no more connections than its open-file limit, and in this container the
# hard limit is 20 000 per process and cannot be raised. So the VUs are spread over WORKERS
# (default 6) local `perfornium worker` processes driven by one `perfornium distributed`, each
# worker holding at most PER_WORKER (default 19 000) connections; the script refuses to run
# (naming the limit) when a worker's share would not fit under its limit.
# nginx runs WEB_WORKERS (default 8) worker processes, each listening with `reuseport` (the kernel
# spreads connections over them) and allowed 19 000 connections.
#
# 1. Idle: IDLE_VUS (default 100 000) VUs, started over a ramp-up, each makes one request and holds
#    its connection through a 600 s think time; the run must count IDLE_VUS requests and no error,
#    so every VU holds a connection while the workers' RSS (/proc/PID/status, every 0.2 s, summed
#    over the workers) is read. The workers' summed RSS before the run is the base; (peak - base)
#    divided by the VUs is the cost of an idle VU.
# 2. Active: ACTIVE_VUS (default 20 000) VUs loop on one GET with THINK seconds (default 1) of think
#    time for ACTIVE_SECS (default 20) after a ramp-up, on the same workers: the target rate is
#    VUs / (think + median response time); the achieved rate is read from the run's timeline over
#    the seconds after the ramp-up, and each worker logs the lag of its intended starts (the moment
#    a think time was due to end vs when the VU ran again) as `start lag`: its percentiles per worker.
#
# Loopback has about 28 000 ephemeral ports (net.ipv4.ip_local_port_range) per source address and
# destination address:port, so nginx listens on 127.0.0.1 .. 127.0.0.N (the whole 127/8 is
# loopback) and the test has one scenario per address (VUs are dealt to scenarios in turn), at most
# PER_ADDRESS (20 000) connections to each. The kernel limits read (and not changed) are written to
# the results file.
#
# Output: bench/results/many-vus.md. Usage: [SKIP_BUILD=1] [IDLE_VUS=..] [ACTIVE_VUS=..] bench/many-vus.sh
# Takes about 2 minutes with the defaults (plus the build).
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_VUS=${IDLE_VUS:-100000}
ACTIVE_VUS=${ACTIVE_VUS:-20000}
THINK=${THINK:-1}
ACTIVE_SECS=${ACTIVE_SECS:-20}
WORKERS=${WORKERS:-6}
PER_WORKER=${PER_WORKER:-19000}
WEB_WORKERS=${WEB_WORKERS:-8}
OUT=bench/results/many-vus.md
BIN=${BIN:-./target/release/perfornium}
PER_ADDRESS=20000

command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q --bin perfornium

ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MOST=$(( IDLE_VUS > ACTIVE_VUS ? IDLE_VUS : ACTIVE_VUS ))
SHARE=$(( (MOST + WORKERS - 1) / WORKERS ))
if [ "$SHARE" -gt "$PER_WORKER" ]; then
  echo "$MOST VUs over $WORKERS workers is $SHARE per worker, over PER_WORKER=$PER_WORKER: set WORKERS higher" >&2
  exit 1
fi
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $(( SHARE + 500 )) ]; then
  echo "the open-file limit is $NOFILE (hard $(ulimit -Hn)): a worker's $SHARE VUs need $(( SHARE + 500 )); set WORKERS higher" >&2
  exit 1
fi
WEB_CONNS=$(( NOFILE == 0 ? 19000 : (NOFILE > 19500 ? 19000 : NOFILE - 500) ))
if [ $(( WEB_WORKERS * WEB_CONNS )) -lt $(( MOST * 5 / 4 )) ]; then
  echo "nginx's $WEB_WORKERS workers × $WEB_CONNS connections leave too little room for $MOST (reuseport spreads them unevenly): set WEB_WORKERS higher" >&2
  exit 1
fi
ADDRS=$(( (MOST + PER_ADDRESS - 1) / PER_ADDRESS ))

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PORT=$(free_port)
LISTEN=$(for i in $(seq "$ADDRS"); do echo "listen 127.0.0.$i:$PORT reuseport backlog=4096;"; done)
cat > "$WORK/nginx.conf" <<CONF
worker_processes $WEB_WORKERS;
worker_rlimit_nofile $(( WEB_CONNS + 400 ));
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections $WEB_CONNS; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 900s;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { $LISTEN location / { default_type text/plain; return 200 "hello"; } }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX=$!
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$NGINX" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.$ADDRS:$PORT/" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "http://127.0.0.$ADDRS:$PORT/" >/dev/null || { cat "$WORK/error.log" >&2; echo "nginx did not start" >&2; exit 1; }

# The workers, each on a free port, each logging to its own file.
LIST=()
for w in $(seq "$WORKERS"); do
  p=$(free_port)
  "$BIN" worker --host 127.0.0.1 --port "$p" > "$WORK/worker$w.out" 2> "$WORK/worker$w.log" &
  PIDS+=($!)
  LIST+=("127.0.0.1:$p")
done
for a in "${LIST[@]}"; do
  for _ in $(seq 200); do curl -sf "http://$a/health" >/dev/null 2>&1 && break; sleep 0.05; done
  curl -sf "http://$a/health" >/dev/null || { cat "$WORK"/worker*.log >&2; echo "worker $a did not start" >&2; exit 1; }
done
WLIST=$(IFS=,; echo "${LIST[*]}")

test_yaml() { # file vus ramp-seconds hold-seconds think
  local vus=$2 addrs=$(( ($2 + PER_ADDRESS - 1) / PER_ADDRESS ))
  {
    echo "name: many-vus"
    echo "global: { timeout: 30000 }"
    echo "load: { pattern: basic, virtual_users: $vus, ramp_up: ${3}s, duration: $(( $3 + $4 ))s }"
    echo "scenarios:"
    for i in $(seq "$addrs"); do
      echo "  - name: a$i"
      echo "    think_time: \"$5\""
      echo "    steps:"
      echo "      - { name: get, path: \"http://127.0.0.$i:$PORT/\" }"
    done
  } > "$1"
}

rss_sum() { # summed VmRSS (KiB) of the workers
  local sum=0 kib
  for p in "${PIDS[@]}"; do
    kib=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    sum=$(( sum + ${kib:-0} ))
  done
  echo "$sum"
}

# Runs a test across the workers; sets BASE_KIB (summed RSS before) and PEAK_KIB (peak of the
# summed RSS while it ran), and leaves the summary in $WORK/out.
run() { # yaml
  rm -rf "$WORK/out"
  BASE_KIB=$(rss_sum)
  "$BIN" distributed "$1" -w "$WLIST" -s even -o "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr" &
  local pid=$! kib
  PEAK_KIB=0
  while kill -0 "$pid" 2>/dev/null; do
    kib=$(rss_sum)
    [ "$kib" -gt "$PEAK_KIB" ] && PEAK_KIB=$kib
    sleep 0.2
  done
  wait "$pid" || { tail -20 "$WORK/stderr" >&2; tail -5 "$WORK"/worker*.log >&2; exit 1; }
}

# Idle VUs: one request each, then a think time longer than the run. The ramp goes at IDLE_RATE
# new VUs a second (default 1,500: on 2 cores, 5,000 and 2,500 a second outran the connects, and VUs started
# late never made their request before the run ended), then IDLE_HOLD seconds (default 20).
RAMP_IDLE=$(( IDLE_VUS / ${IDLE_RATE:-1500} + 1 ))
test_yaml "$WORK/idle.yaml" "$IDLE_VUS" "$RAMP_IDLE" "${IDLE_HOLD:-20}" 600s
run "$WORK/idle.yaml"
IDLE_BASE=$BASE_KIB; IDLE_PEAK=$PEAK_KIB
python3 - "$WORK/out/summary.json" "$IDLE_VUS" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["overall"]
want = int(sys.argv[2])
if o["count"] != want or o["errors"] != 0:
    sys.exit(f"idle run: {o['count']} requests and {o['errors']} errors, expected {want} and 0: not every VU holds a connection")
PY
cp "$WORK/out/summary.json" "$WORK/idle-summary.json"
# Where each worker's log stands: its `start lag` line for the active run comes after this.
for w in $(seq "$WORKERS"); do stat -c %s "$WORK/worker$w.log" > "$WORK/worker$w.offset"; done

# Active VUs, on the same workers.
RAMP=$(( ACTIVE_VUS / 5000 + 2 ))
test_yaml "$WORK/active.yaml" "$ACTIVE_VUS" "$RAMP" "$ACTIVE_SECS" "${THINK}s"
run "$WORK/active.yaml"
ACTIVE_PEAK=$PEAK_KIB

python3 - "$OUT" "$IDLE_VUS" "$IDLE_BASE" "$IDLE_PEAK" "$ACTIVE_VUS" "$THINK" "$RAMP" "$ACTIVE_SECS" "$ACTIVE_PEAK" "$ADDRS" \
  "$WORKERS" "$WEB_WORKERS" "$WEB_CONNS" "$NOFILE" "$WORK/idle-summary.json" "$WORK/out/summary.json" "$WORK" <<'PY'
import json, re, sys, datetime, statistics, os
(out, idle, base, peak, active, think, ramp, secs, apeak, addrs, workers, web_workers, web_conns, nofile,
 idle_summary, summary, work) = sys.argv[1:]
idle, base, peak, active, think, ramp, secs, workers = int(idle), int(base), int(peak), int(active), float(think), int(ramp), int(secs), int(workers)
def sysctl(name):
    try:
        return " ".join(open("/proc/sys/" + name.replace(".", "/")).read().split())
    except OSError:
        return "unreadable"
load = open("/proc/loadavg").read().split()[0]
cores = os.cpu_count()
i = json.load(open(idle_summary))
s = json.load(open(summary))
o = s["overall"]
if o["errors"]:
    sys.exit(f"active run: {o['errors']} errors")
# The seconds after the ramp-up, but not the last (partly the run's end).
tl = [p for p in s["timeline"] if ramp + 1 < p["second"] <= ramp + secs - 1]
rate = statistics.mean(p["requests"] for p in tl)
mean_ms = statistics.mean(p["p50_ms"] for p in tl)
target = active / (think + mean_ms / 1000)
lags = []
for w in range(1, workers + 1):
    lag = None
    log = open(f"{work}/worker{w}.log", errors="replace")
    log.seek(int(open(f"{work}/worker{w}.offset").read()))
    for line in log:
        if "start lag" in line:
            lag = dict(re.findall(r"(\w+)=([\d.]+)", line))
    lags.append(lag or {})
per_worker_idle = [w["count"] for w in i.get("workers", [])]
with open(out, "w") as f:
    f.write("# Many virtual users\n\n")
    f.write(f"Written by `bench/many-vus.sh` on {datetime.date.today()}, {cores} cores, 1-minute load average {load} at the end: "
            f"{workers} local `perfornium worker` processes (release) driven by one `perfornium distributed` (strategy even), "
            f"against nginx with {web_workers} worker processes (`reuseport`, {web_conns} connections each) listening on "
            f"{addrs} loopback address(es) (127.0.0.1..{addrs}), one scenario per address. Nothing is pinned to a core.\n\n")
    f.write(f"Limits: open files per process {nofile} (the hard limit, not raisable here); "
            f"net.ipv4.ip_local_port_range {sysctl('net.ipv4.ip_local_port_range')}; net.core.somaxconn {sysctl('net.core.somaxconn')}; "
            f"net.ipv4.tcp_max_syn_backlog {sysctl('net.ipv4.tcp_max_syn_backlog')}; fs.nr_open {sysctl('fs.nr_open')}. "
            f"The script sets none of them.\n\n")
    f.write("## Idle VUs holding a keep-alive connection\n\n")
    f.write("| VUs | workers | requests counted, errors | requests per worker | workers' RSS before, MiB | workers' peak RSS, MiB | KiB per idle VU |\n|---|---|---|---|---|---|---|\n")
    per = (peak - base) / max(idle, 1)
    f.write(f"| {idle} | {workers} | {i['overall']['count']}, {i['overall']['errors']} | {' / '.join(map(str, per_worker_idle))} | "
            f"{base/1024:.1f} | {peak/1024:.1f} | {per:.2f} |\n\n")
    f.write(f"## Active VUs with think time\n\n{active} VUs over the same {workers} workers, {think:g} s think time, {secs} s after a {ramp} s ramp-up; "
            f"rate over seconds {ramp + 2}..{ramp + secs - 1} of the merged timeline; target = VUs / (think time + median response time).\n\n")
    f.write("| VUs | target req/s | achieved req/s | achieved ÷ target | workers' peak RSS MiB |\n|---|---|---|---|---|\n")
    f.write(f"| {active} | {target:.0f} | {rate:.0f} | {rate/target:.3f} | {int(apeak)/1024:.0f} |\n\n")
    f.write("Start lag of intended starts, as each worker logged it:\n\n| worker | lags measured | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
    for n, l in enumerate(lags, 1):
        f.write(f"| {n} | {l.get('count','?')} | {l.get('p50_ms','?')} | {l.get('p99_ms','?')} | {l.get('max_ms','?')} |\n")
print(open(out).read())
PY
