#!/bin/sh
# Measures what TypeScript type-stripping with swc_ts_fast_strip (the crate behind Node's amaro)
# would add to Perfornium: release build time and binary size against the same crate without it,
# each built from nothing in its own target directory, and the time to strip the 200-line
# sample.ts. Writes bench/results/typescript.md. Usage: bench/script-engines/ts-strip/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../results/typescript.md"
scratch=${SCRATCH:-$(mktemp -d)}
cd "$here"
cargo fetch --quiet
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

build() { # $1 = name, $2.. = cargo flags; prints seconds
  name=$1; shift
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$scratch/$name" cargo build --release --quiet "$@" >/dev/null 2>&1 || {
    echo "build $name failed" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$start $end" | awk '{printf "%.1f", $2 - $1}'
}
base_s=$(build base)
swc_s=$(build swc --features swc)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
base_b=$(stat -c %s "$scratch/base/release/ts-strip")
swc_b=$(stat -c %s "$scratch/swc/release/ts-strip")
run=$("$scratch/swc/release/ts-strip" sample.ts 500)
strip_us=$(echo "$run" | sed 's/.*"strip_us": \([0-9.]*\).*/\1/')
same=$(echo "$run" | sed 's/.*"same_lines": \([a-z]*\).*/\1/')
swc_v=$(grep -A1 'name = "swc_ts_fast_strip"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
crates=$(grep -c '^name = ' Cargo.lock)
{
  echo "## TypeScript type-stripping: what it would cost"
  echo
  echo "Written by \`bench/script-engines/ts-strip/run.sh\` on $(date -u +%Y-%m-%d) with $(rustc --version | cut -d' ' -f1-2), $(nproc) cores, niceness $(nice), load average $load_before before the builds and $load_after after. Each binary is a release build from nothing in its own target directory; the difference between them is what swc_ts_fast_strip $swc_v adds ($crates crates in its lock file)."
  echo
  echo "| | release build, s | binary, bytes |"
  echo "|---|---:|---:|"
  echo "| without (reads the file) | $base_s | $base_b |"
  echo "| with swc_ts_fast_strip | $swc_s | $swc_b |"
  echo "| added | $(echo "$swc_s $base_s" | awk '{printf "%.1f", $1 - $2}') | $((swc_b - base_b)) |"
  echo
  echo "Strip time of \`sample.ts\` ($(wc -l < sample.ts) lines), mean of 500 strips: $strip_us µs. Lines kept in place (errors keep their line numbers): $same."
} > "$out"
[ -n "${SCRATCH:-}" ] || rm -rf "$scratch"
cat "$out"
