#!/usr/bin/env bash
# Wall time of every test of the slow test binaries, as `cargo test` runs them (libtest, its
# default threads, all tests of a binary in one process), and of each binary as a whole.
#
# The binaries are built first (a debug build, as `cargo test --workspace` does), then run one after
# another from the repository root with libtest's JSON events and `--report-time`; libtest's
# unstable options are allowed at run time with RUSTC_BOOTSTRAP=1 set for the test binary only
# (nothing is compiled with it, and CI does not use this script). Each event line is stamped with
# the seconds since its binary started as it arrives, so every test's start and end are known and
# the stretch at the end where one test ran alone shows. Tests run in parallel as in CI, so a test's
# time includes the contention of whatever ran beside it; the host's load average before and after
# each binary is recorded beside it.
#
# Output: bench/results/suite-time.md (overwritten).
# Usage: bench/suite-time.sh [BINARY ...]    (default: cluster local partitions)
#        TEST_THREADS=N bench/suite-time.sh  (libtest's --test-threads; default: libtest's own)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/suite-time.md
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(cluster local partitions)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

targs=()
for b in "${bins[@]}"; do targs+=(--test "$b"); done
cargo test -p perfornium --no-run --message-format=json "${targs[@]}" >"$scratch/build.json"

threads=()
[ -n "${TEST_THREADS:-}" ] && threads=(--test-threads "$TEST_THREADS")

{
  echo "# Test-suite time per test"
  echo
  echo "Written by \`bench/suite-time.sh ${bins[*]}\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests || echo ' with uncommitted changes')."
  echo "Host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); libtest threads: ${TEST_THREADS:-default ($(nproc))}."
  echo
  echo "| binary | tests | passed | failed | ignored | wall s | Σ test s | last test alone s | load avg before | load avg after |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
} >"$scratch/head.md"
: >"$scratch/tables.md"

cat >"$scratch/run.py" <<'PY'
import json, os, subprocess, sys, time
name, exe, head, tables, err = sys.argv[1:6]
before = " ".join(open("/proc/loadavg").read().split()[:3])
env = dict(os.environ, RUSTC_BOOTSTRAP="1")
t0 = time.monotonic()
p = subprocess.Popen([exe, "-Z", "unstable-options", "--format", "json", "--report-time", *sys.argv[6:]],
                     stdout=subprocess.PIPE, stderr=open(err, "w"), env=env, text=True)
started, rows, counts, failures = {}, [], {"ok": 0, "failed": 0, "ignored": 0}, []
for line in p.stdout:
    at = time.monotonic() - t0
    line = line.strip()
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("type") != "test":
        continue
    if e.get("event") == "started":
        started[e["name"]] = at
    elif e.get("event") in counts:
        counts[e["event"]] += 1
        if e["event"] == "failed":
            # What the test printed from its panic message on (without a backtrace's frames).
            out = e.get("stdout", "").splitlines()
            at = next((i for i, l in enumerate(out) if "panicked at" in l), max(len(out) - 12, 0))
            failures.append((e["name"], "\n".join(l for l in out[at:at + 40] if l.strip() != "stack backtrace:" and not l.lstrip()[:1].isdigit() and not l.lstrip().startswith("at "))[:3000]))
        if e["event"] != "ignored":
            rows.append((float(e.get("exec_time", 0.0)), e["name"], e["event"], started.get(e["name"], 0.0), at))
p.wait()
wall = time.monotonic() - t0
after = " ".join(open("/proc/loadavg").read().split()[:3])
# The seconds at the end of the binary during which only its last test ran.
ends = sorted((r[4], r[1]) for r in rows)
alone = ends[-1][0] - ends[-2][0] if len(ends) > 1 else 0.0
last = ends[-1][1] if ends else "-"
rows.sort(reverse=True)
total = sum(r[0] for r in rows)
with open(head, "a") as f:
    f.write(f"| {name} | {sum(counts.values())} | {counts['ok']} | {counts['failed']} | {counts['ignored']} "
            f"| {wall:.1f} | {total:.1f} | {alone:.1f} (`{last}`) | {before} | {after} |\n")
with open(tables, "a") as f:
    f.write(f"\n## {name}\n\n| s | test | result | started at s | ended at s |\n| ---: | --- | --- | ---: | ---: |\n")
    for t, n, ev, st, en in rows:
        f.write(f"| {t:.1f} | `{n}` | {ev} | {st:.1f} | {en:.1f} |\n")
    for n, out in failures:
        f.write(f"\n`{n}` failed; its panic:\n\n```\n{out}\n```\n")
PY

for b in "${bins[@]}"; do
  exe=$(jq -r --arg b "$b" 'select(.reason=="compiler-artifact" and .target.kind==["test"] and .target.name==$b) | .executable' "$scratch/build.json" | tail -1)
  [ -x "$exe" ] || { echo "no test binary for $b" >&2; exit 1; }
  echo "running $b" >&2
  # A failing test makes the binary exit non-zero; its time is still recorded, marked failed.
  python3 "$scratch/run.py" "$b" "$exe" "$scratch/head.md" "$scratch/tables.md" "$scratch/$b.err" "${threads[@]}"
done
cat "$scratch/head.md" "$scratch/tables.md" >"$OUT"
echo "wrote $OUT"
