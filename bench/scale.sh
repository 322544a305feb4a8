#!/bin/sh
# The control plane at scale (issue 19 §3): writes bench/results/scale.md from the ignored test
# `control_plane_at_scale` (tests/bench/scale.rs), release build. The build yields to other work
# (nice 19); the measurement itself runs at normal priority.
#   bench/scale.sh                                   # 100, 300 and 1,000 workers, 30 s each
#   SCALE_WORKERS=100 SCALE_SECONDS=20 bench/scale.sh
#   SCALE_WHOLE=1 bench/scale.sh                     # also with records saved whole
set -eu
cd "$(dirname "$0")/.."
: "${SCALE_WORKERS:=100,300,1000}"
: "${SCALE_SECONDS:=30}"
export SCALE_WORKERS SCALE_SECONDS
nice -n 19 cargo test --release -p perfornium --test bench --no-run
exec nice -n 0 cargo test --release -p perfornium --test bench scale::control_plane_at_scale -- --ignored --nocapture
