#!/usr/bin/env bash
# Runs the end-to-end benchmark and fault report in one command:
#   scripts/bench.sh              full run (≈ 20 minutes, the 1M-referral scale section included),
#                                 rewrites docs/BENCHMARKS.md and docs/bench/*.svg
#   scripts/bench.sh --quick      small data set and short workloads (≈ 4 minutes)
#   scripts/bench.sh --only scale the scale section alone (≈ 12 minutes), writes docs/BENCHMARKS-scale.md
# Any other flag goes to phoenix-bench (bin/phoenix-bench --help lists them). The bench starts its
# own gateways on 127.0.0.1:18480-18482 against its own database (phoenix_bench, recreated) and a
# private redis-server on 127.0.0.1:16479 that it kills for the Redis fault (docs/benchmarking.md).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
echo "bench: building gateways and bench" >&2
mkdir -p bin
$GO build -o bin/admin-gateway ./cmd/admin-gateway
$GO build -o bin/query-gateway ./cmd/query-gateway
$GO build -o bin/phoenix-bench ./cmd/phoenix-bench
bash scripts/deps.sh

args=()
full=1
for a in "$@"; do
  if [ "$a" = "--quick" ]; then full=0; fi
  args+=("$a")
done
if [ "$full" = 1 ] && [ -z "${BENCH_NO_PG_RESTART:-}" ]; then
  args+=("--pg-restart")
fi
exec bin/phoenix-bench "${args[@]}"
