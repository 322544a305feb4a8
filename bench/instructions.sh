#!/usr/bin/env bash
# Instructions per request: perfornium vs wrk against the same nginx, counted by valgrind's callgrind,
# so the figure is repeatable on a busy machine where wall-clock and CPU-time figures are not.
#
# nginx (one worker) runs natively on core 0; each tool runs under callgrind on core 1 with the
# same connection count, twice: SHORT and LONG seconds. The marginal cost (Ir(LONG) - Ir(SHORT)) /
# (requests(LONG) - requests(SHORT)) cancels start-up and report writing, so it is the cost of one
# more request in the load loop. Callgrind counts user-space instructions of every thread; system
# calls are counted separately (strace -c -f, also differenced) because the kernel's work is not in
# Ir. Requests are the tool's own count (wrk: "N requests in"; perfornium: summary.json) and every
# run must be free of errors.
#
# Each run appends one line per tool to bench/results/instructions.tsv (labelled with LABEL, default
# the commit) and rewrites bench/results/instructions.md from that file, so the history of
# optimisation steps stays side by side with the peer measured in the same run.
# With PROFILE=1 it also writes bench/results/profile.md: perfornium's self cost by component.
#
# Usage: [SKIP_BUILD=1] [LABEL=text] [PROFILE=1] bench/instructions.sh [CONNECTIONS] [SHORT] [LONG]
# Takes about 2 minutes (4 callgrind runs of SHORT/LONG seconds, 4 strace runs, plus the build).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-50}
SHORT=${2:-2}
LONG=${3:-6}
OUT=bench/results/instructions.md
TSV=bench/results/instructions.tsv
BIN=${BIN:-./target/release/perfornium}
LABEL=${LABEL:-$(git log -1 --format='%h %s' | cut -c1-72)}
[ -z "$(git status --porcelain -- src Cargo.toml)" ] || LABEL="$LABEL (+ uncommitted changes)"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v strace >/dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; fi
# Line tables only (no change to the generated code) so that the profile can name source lines.
[ -n "${SKIP_BUILD:-}" ] || CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -q --bin perfornium

# perfornium's runtime on one worker thread, as wrk -t1 (set here: `env` before the command would
# hide perfornium from callgrind, which follows no exec).
export TOKIO_WORKER_THREADS=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PORT=$(free_port)
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK; proxy_temp_path $WORK; fastcgi_temp_path $WORK; uwsgi_temp_path $WORK; scgi_temp_path $WORK;
  server { listen 127.0.0.1:$PORT; location / { default_type text/plain; return 200 "hello"; } }
}
CONF
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX=$!
trap 'kill $NGINX 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$PORT/" >/dev/null || { echo "nginx did not start" >&2; exit 1; }

test_yaml() { # seconds
  cat > "$WORK/t$1.yaml" <<YAML
name: bench
global: { base_url: "http://127.0.0.1:$PORT", timeout: 30000 }
load: { pattern: basic, virtual_users: $CONNS, duration: ${1}s }
scenarios:
  - name: get
    steps:
      - { name: get, path: / }
YAML
}

# The tool's own count of successful requests in a run whose stdout is in $WORK/stdout (wrk) or
# whose summary is in $WORK/out (perfornium); a run with errors stops the script.
requests() { # tool
  case $1 in
    wrk) python3 - "$WORK/stdout" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
n = int(re.search(r"(\d+) requests in", t).group(1))
bad = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
bad += sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", t))
if bad: sys.exit(f"wrk counted {bad} errors")
print(n)
PY
    ;;
    perfornium) python3 - "$WORK/out/summary.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["overall"]
if o["errors"]: sys.exit(f"perfornium counted {o['errors']} errors")
print(o["count"])
PY
    ;;
  esac
}

command_for() { # tool seconds
  case $1 in
    wrk) echo "wrk -t1 -c$CONNS -d${2}s http://127.0.0.1:$PORT/" ;;
    perfornium) test_yaml "$2"; echo "$BIN run $WORK/t$2.yaml -o $WORK/out" ;;
  esac
}

# Sets IR and REQ for one callgrind run.
callgrind_run() { # tool seconds
  rm -rf "$WORK/out"
  # shellcheck disable=SC2046
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$1.$2" \
    $(command_for "$1" "$2") > "$WORK/stdout" 2> "$WORK/stderr" || { cat "$WORK/stderr" >&2; exit 1; }
  IR=$(grep -m1 '^summary:' "$WORK/cg.$1.$2" | awk '{print $2}')
  REQ=$(requests "$1")
  echo "$REQ" > "$WORK/cg.$1.$2.requests"
}

# Sets SYSCALLS and REQ for one strace run.
strace_run() { # tool seconds
  rm -rf "$WORK/out"
  # shellcheck disable=SC2046
  taskset -c 1 strace -f -c -o "$WORK/strace" $(command_for "$1" "$2") > "$WORK/stdout" 2> "$WORK/stderr" \
    || { cat "$WORK/stderr" >&2; exit 1; }
  SYSCALLS=$(awk '$NF=="total"{print $4}' "$WORK/strace")
  REQ=$(requests "$1")
}

for tool in wrk perfornium; do
  callgrind_run "$tool" "$SHORT"; IR1=$IR; R1=$REQ
  callgrind_run "$tool" "$LONG"; IR2=$IR; R2=$REQ
  strace_run "$tool" "$SHORT"; S1=$SYSCALLS; Q1=$REQ
  strace_run "$tool" "$LONG"; S2=$SYSCALLS; Q2=$REQ
  python3 - "$TSV" "$LABEL" "$tool" "$IR1" "$R1" "$IR2" "$R2" "$S1" "$Q1" "$S2" "$Q2" "$CONNS" <<'PY'
import sys, datetime
tsv, label, tool, ir1, r1, ir2, r2, s1, q1, s2, q2, conns = sys.argv[1:]
ir = (int(ir2) - int(ir1)) / max(int(r2) - int(r1), 1)
sc = (int(s2) - int(s1)) / max(int(q2) - int(q1), 1)
with open(tsv, "a") as f:
    f.write("\t".join([datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), label, tool, conns,
                       str(int(r2) - int(r1)), f"{ir:.0f}", f"{sc:.2f}"]) + "\n")
PY
done

if [ -n "${PROFILE:-}" ]; then
  python3 bench/profile.py "$WORK/cg.perfornium.$SHORT" "$WORK/cg.perfornium.$LONG" "$LABEL" > bench/results/profile.md
fi

python3 - "$TSV" "$OUT" <<'PY'
import sys, collections
tsv, out = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
# One run of the script writes wrk's line, then perfornium's, with the same label and connections.
runs = []
for when, label, tool, conns, req, ir, sc in rows:
    if tool == "wrk" or not runs or runs[-1][0][1:] != (label, conns) or tool in runs[-1][1]:
        runs.append(((when, label, conns), {}))
    runs[-1][1][tool] = (int(req), float(ir), float(sc))
with open(out, "w") as f:
    f.write("# Instructions per request\n\n")
    f.write("Written by `bench/instructions.sh` from `bench/results/instructions.tsv` (one line per tool and run). "
            "Marginal user-space instructions (callgrind Ir) and system calls (strace) per successful request, "
            "perfornium and wrk against the same nginx in the same run, CONNECTIONS keep-alive connections on one core.\n\n")
    f.write("| when (UTC) | build | connections | tool | requests differenced | Ir/request | syscalls/request | perfornium ÷ wrk Ir | perfornium ÷ wrk syscalls |\n|---|---|---|---|---|---|---|---|---|\n")
    for (when, label, conns), tools in runs:
        w, p = tools.get("wrk"), tools.get("perfornium")
        for tool in ("wrk", "perfornium"):
            if tool not in tools: continue
            req, ir, sc = tools[tool]
            ratio = f"{p[1]/w[1]:.2f}" if (tool == "perfornium" and w and p) else ""
            sratio = f"{p[2]/w[2]:.2f}" if (tool == "perfornium" and w and p and w[2]) else ""
            f.write(f"| {when} | {label} | {conns} | {tool} | {req} | {ir:.0f} | {sc:.2f} | {ratio} | {sratio} |\n")
print(open(out).read())
PY
