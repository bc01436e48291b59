#!/usr/bin/env bash
# Lesson 2's networking done by nslab vs the same sequence with `ip`, side by side.
# Needs root. Rounds: NSLAB_BENCH_ROUNDS (default 30).
#   sudo ./bench/net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench net
