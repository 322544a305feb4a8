#!/usr/bin/env bash
# Many virtual users: memory of idle VUs that each hold a keep-alive connection, and whether many
# active VUs with think time keep their target rate without the scheduler falling behind.
#
# nginx (one worker) runs on core 0, perfornium (release build) on core 1.
# 1. Idle: IDLE_VUS (default 100 000) VUs, started over a ramp-up, each makes one request and holds
#    its connection through a 600 s think time; the run must count IDLE_VUS requests and no error,
#    so every VU holds a connection while the peak RSS (/proc/PID/status, sampled every 0.2 s) is
#    read. The same test with 1 VU gives the base; the difference per VU is the cost of an idle VU.
# 2. Active: ACTIVE_VUS (default 20 000) VUs loop on one GET with THINK seconds (default 1) of think
#    time for ACTIVE_SECS (default 30) after a ramp-up: the target rate is VUs / (think + response
#    time); the achieved rate is read over the seconds after the ramp-up from the run's timeline, and
#    the lag of intended starts (the moment a think time was due to end vs when the VU ran again,
#    logged by the engine as `start lag`) gives the scheduler's delay as percentiles.
#
# Loopback has about 28 000 ephemeral ports (net.ipv4.ip_local_port_range) per source address and
# destination address:port, so nginx listens on 127.0.0.1 .. 127.0.0.N (the whole 127/8 is
# loopback) and the test has one scenario per address (VUs are dealt to scenarios in turn), at most
# 20 000 connections each. Both processes need an open-file limit above their connection count:
# the script raises its soft limit to the hard one and refuses to run (naming the limit) below it.
#
# Output: bench/results/many-vus.md. Usage: [SKIP_BUILD=1] [IDLE_VUS=..] [ACTIVE_VUS=..] bench/many-vus.sh
# Takes about 3 minutes with the defaults (plus the build).
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_VUS=${IDLE_VUS:-100000}
ACTIVE_VUS=${ACTIVE_VUS:-20000}
THINK=${THINK:-1}
ACTIVE_SECS=${ACTIVE_SECS:-30}
OUT=bench/results/many-vus.md
BIN=${BIN:-./target/release/perfornium}
PER_ADDRESS=20000

command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q --bin perfornium

ulimit -n "$(ulimit -Hn)"
MOST=$(( IDLE_VUS > ACTIVE_VUS ? IDLE_VUS : ACTIVE_VUS ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(( MOST + 1000 )) ]; then
  echo "the open-file limit is $(ulimit -n) (hard $(ulimit -Hn)): $MOST VUs need $(( MOST + 1000 )); raise it (e.g. LimitNOFILE, /etc/security/limits.conf) or set IDLE_VUS/ACTIVE_VUS lower" >&2
  exit 1
fi
ADDRS=$(( (MOST + PER_ADDRESS - 1) / PER_ADDRESS ))

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PORT=$(free_port)
LISTEN=$(for i in $(seq "$ADDRS"); do echo "listen 127.0.0.$i:$PORT backlog=4096;"; done)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $(( MOST + 1000 ));
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections $(( MOST + 500 )); }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 900s;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { $LISTEN location / { default_type text/plain; return 200 "hello"; } }
}
CONF
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX=$!
trap 'kill $NGINX 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.$ADDRS:$PORT/" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "http://127.0.0.$ADDRS:$PORT/" >/dev/null || { cat "$WORK/error.log" >&2; echo "nginx did not start" >&2; exit 1; }

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

# Runs a test on core 1; sets PEAK_KIB (peak VmRSS) and leaves the summary in $WORK/out.
run() { # yaml
  rm -rf "$WORK/out"
  taskset -c 1 "$BIN" run "$1" -o "$WORK/out" > "$WORK/stdout" 2> "$WORK/stderr" &
  local pid=$! kib
  PEAK_KIB=0
  while kill -0 "$pid" 2>/dev/null; do
    kib=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$kib" ] && [ "$kib" -gt "$PEAK_KIB" ] && PEAK_KIB=$kib
    sleep 0.2
  done
  wait "$pid" || { tail -20 "$WORK/stderr" >&2; exit 1; }
}

# Idle VUs: one request each, then a think time longer than the run.
idle() { # vus
  local ramp=$(( $1 / 5000 + 1 ))
  test_yaml "$WORK/idle.yaml" "$1" "$ramp" 5 600s
  run "$WORK/idle.yaml"
  python3 - "$WORK/out/summary.json" "$1" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["overall"]
want = int(sys.argv[2])
if o["count"] != want or o["errors"] != 0:
    sys.exit(f"idle run: {o['count']} requests and {o['errors']} errors, expected {want} and 0: not every VU holds a connection")
PY
}
idle 1; ONE=$PEAK_KIB
idle "$IDLE_VUS"; MANY=$PEAK_KIB

# Active VUs.
RAMP=$(( ACTIVE_VUS / 5000 + 2 ))
test_yaml "$WORK/active.yaml" "$ACTIVE_VUS" "$RAMP" "$ACTIVE_SECS" "${THINK}s"
run "$WORK/active.yaml"
ACTIVE_PEAK=$PEAK_KIB

python3 - "$OUT" "$IDLE_VUS" "$ONE" "$MANY" "$ACTIVE_VUS" "$THINK" "$RAMP" "$ACTIVE_SECS" "$ACTIVE_PEAK" "$ADDRS" \
  "$WORK/out/summary.json" "$WORK/stderr" <<'PY'
import json, re, sys, datetime, statistics
out, idle, one, many, active, think, ramp, secs, apeak, addrs, summary, stderr = sys.argv[1:]
idle, one, many, active, think, ramp, secs = int(idle), int(one), int(many), int(active), float(think), int(ramp), int(secs)
s = json.load(open(summary))
o = s["overall"]
if o["errors"]:
    sys.exit(f"active run: {o['errors']} errors")
# The seconds after the ramp-up, but not the last (partly the run's end).
tl = [p for p in s["timeline"] if ramp + 1 < p["second"] <= ramp + secs - 1]
rate = statistics.mean(p["requests"] for p in tl)
mean_ms = statistics.mean(p["p50_ms"] for p in tl)
target = active / (think + mean_ms / 1000)
lag = None
for line in open(stderr):
    if "start lag" in line:
        lag = dict(re.findall(r"(\w+)=([\d.]+)", line))
with open(out, "w") as f:
    f.write("# Many virtual users\n\n")
    f.write(f"Written by `bench/many-vus.sh` on {datetime.date.today()}: nginx (1 worker) on core 0, perfornium (release) on core 1, "
            f"nginx listening on {addrs} loopback address(es) (127.0.0.1..{addrs}), one scenario per address.\n\n")
    f.write("## Idle VUs holding a keep-alive connection\n\n| VUs | requests counted, errors | peak RSS MiB | KiB per idle VU | RSS at 100 000 VUs at this slope, GiB |\n|---|---|---|---|---|\n")
    per = (many - one) / max(idle - 1, 1)
    f.write(f"| 1 | 1, 0 | {one/1024:.1f} | | |\n")
    f.write(f"| {idle} | {idle}, 0 | {many/1024:.1f} | {per:.2f} | {(one + per * 100000) / 1024 / 1024:.2f} |\n\n")
    f.write(f"## Active VUs with think time\n\n{active} VUs, {think:g} s think time, {secs} s after a {ramp} s ramp-up; "
            f"rate over seconds {ramp + 2}..{ramp + secs - 1} of the timeline; target = VUs / (think time + median response time).\n\n")
    f.write("| VUs | target req/s | achieved req/s | achieved ÷ target | start lag p50 ms | p99 ms | max ms | lags measured | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n")
    l = lag or {}
    f.write(f"| {active} | {target:.0f} | {rate:.0f} | {rate/target:.3f} | {l.get('p50_ms','?')} | {l.get('p99_ms','?')} | {l.get('max_ms','?')} | {l.get('count','?')} | {int(apeak)/1024:.0f} |\n")
print(open(out).read())
PY
