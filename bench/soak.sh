#!/bin/sh
# The soak of issue 19 §4: a 3-replica master drives 10 workers through back-to-back runs for
# SOAK_MINUTES (default 60) and writes bench/results/soak.md (RSS of every process, sled directory
# sizes and raft log lengths each minute, and their slopes after warm-up).
#   bench/soak.sh            # 60 minutes
#   SOAK_MINUTES=10 bench/soak.sh
set -eu
cd "$(dirname "$0")/.."
: "${SOAK_MINUTES:=60}"
: "${SOAK_RUN_SECONDS:=60}"
export SOAK_MINUTES SOAK_RUN_SECONDS
exec cargo test --release -p perfornium --test cluster soak_report -- --ignored --nocapture
