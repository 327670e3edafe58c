#!/usr/bin/env bash
# PromQL latency of Strata vs Debian's Prometheus 2.42 on the same promtool-made blocks
# (see `strata tools bench query --help`). Blocks are built once into the work dir and
# reused by later runs with the same shape.
#   scripts/bench-query.sh [WORK_DIR] [extra args for `strata tools bench query`]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-query}
shift || true
cargo build --release --bin strata
echo "machine: $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exec target/release/strata tools bench query --dir "$work" "$@"
