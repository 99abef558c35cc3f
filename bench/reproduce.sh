#!/usr/bin/env bash
# Re-runs the benchmarks behind bench/RESULTS.md and regenerates its generated part.
#
#   bench/reproduce.sh              # Sluice, native and reference rows (about 20 minutes on 2 cores)
#   bench/reproduce.sh --with-flink # also Flink (install it once: bench/peers/flink/install.sh)
#   bench/reproduce.sh --micro      # also the Wasm host, checkpoint/recovery and machine micro-benchmarks
#
# The 5 M-event runs hold the input and its reference answer in memory: allow about 9 GB.
#
# Rows are merged into bench/results/latest.json (a row replaces the one with the same
# workload, system, mode, shards and events); `sluice-bench report` then rewrites the part
# of RESULTS.md between its markers and the plots in bench/results/plots.
set -euo pipefail
cd "$(dirname "$0")/.."

with_flink=0 micro=0
for a in "$@"; do
  case "$a" in
    --with-flink) with_flink=1 ;;
    --micro) micro=1 ;;
    *) echo "unknown option $a (use --with-flink, --micro)" >&2; exit 2 ;;
  esac
done

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --release -p sluice-bench -p sluice
bin="${CARGO_TARGET_DIR:-target}/release"
B="$bin/sluice-bench"

# Closed loop, in process: every Nexmark query and the fraud rules, Sluice beside the
# same plugin crates compiled natively; 1M events as in the Flink rows.
"$B" run --system sluice,native,reference --workload nexmark,fraud-rules --events 1000000 --shards 2 --quiet
# The other showcase scenarios through their plugins' demo jobs (no reference answer in
# the harness for these: their results are checked in engine/tests/showcase_jobs.rs).
"$B" run --system sluice --workload surge-pricing,sales-rollup,sessionize,viewers,leaderboard --events 1000000 --shards 2 --quiet
# Scaling: one shard against two on 5M events, their repetitions alternating so that the
# shared machine's drift reaches both alike.
"$B" run --system sluice --workload nexmark --events 5000000 --shards 1,2 --repetitions 5 --quiet
# As Flink's Nexmark runs: results to a discard (blackhole) sink, checked by count.
"$B" run --system sluice --workload nexmark --events 5000000 --shards 1,2 --repetitions 5 --sink discard --quiet
"$B" run --system sluice --workload nexmark --events 5000000 --shards 1,2 --partitions 4 --repetitions 5 --sink discard --quiet
# Checkpoint cost: the same job with a checkpoint every second (default) and every hour.
"$B" run --system sluice --workload q5 --events 5000000 --shards 2 --checkpoint-interval-ms 3600000 --quiet
# Latency: open loop at fixed rates, about a quarter and a half of the closed-loop maximum.
"$B" run --system sluice --workload q0 --events 2000000 --shards 2 --open-loop-rate 500000 --quiet
"$B" run --system sluice --workload q0 --events 4000000 --shards 2 --open-loop-rate 1100000 --quiet
"$B" run --system sluice --workload q1 --events 2000000 --shards 2 --open-loop-rate 500000 --quiet
"$B" run --system sluice --workload q1 --events 4000000 --shards 2 --open-loop-rate 1100000 --quiet
# Over HTTP: MessagePack and JSON ingest while the query runs into a view; then the ack
# latency at 500 K events/s. One shard, so that the HTTP runtime has the other core (on
# two cores that beats two shards sharing both with it).
"$B" run --system sluice-http,sluice-http-json --workload q0,q7 --events 2000000 --shards 1 --quiet
"$B" run --system sluice-http --workload q7 --events 2000000 --shards 1 --open-loop-rate 500000 --quiet

if [ "$with_flink" = 1 ]; then
  "$B" run --system reference,flink --workload nexmark --events 1000000 --quiet
  "$B" run --system reference,flink --workload nexmark --events 5000000 --quiet
fi

if [ "$micro" = 1 ]; then
  SLUICE_BENCH_RUNS=3 cargo bench -p sluice-bench --bench wasm
  SLUICE_BIN="$bin/sluice" cargo bench -p sluice-bench --bench checkpoint
  cargo bench -p sluice-bench --bench machine
fi

"$B" report
