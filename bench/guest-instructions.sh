#!/usr/bin/env bash
# Guest instructions per record through the Wasm host, by plugin function: the wasm bench
# (one query, batch 1000, 50,000 bids, both of its hosts) under callgrind, whose JIT
# addresses are named from the perf map wasmtime writes with SLUICE_PERF_MAP=1.
# Instruction counts do not depend on what else the machine runs, so they compare two
# builds where timings on a shared machine cannot.
#
#   bench/guest-instructions.sh [query]     # q0 (default), q2 or q7
#
# Names need an unstripped module: set `strip = false` under [profile.plugin] in
# Cargo.toml while profiling (and back before committing); stripped, functions show
# as wasm[0]::function[N] and the total is still right. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
query="${1:-q0}"
records=50000
# The bench executable, as cargo reports it (an absolute path).
bench=$(cargo bench -p sluice-bench --bench wasm --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "wasm" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
map=""
trap 'rm -rf "$work" ${map:+"$map"}' EXIT
cd "$work"
SLUICE_PERF_MAP=1 SLUICE_BENCH_RUNS=1 SLUICE_BENCH_QUERIES="$query" \
  SLUICE_BENCH_BATCHES=1000 SLUICE_BENCH_RECORDS=$records \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$bench" \
  >"$work/run.log" 2>&1 &
pid=$!
map="/tmp/perf-$pid.map" # where wasmtime writes it, named by the (valgrind) process id
if ! wait $pid; then
  echo "the bench failed under valgrind; its output:" >&2
  cat "$work/run.log" >&2
  exit 1
fi
callgrind_annotate --threshold=100 --show-percs=no "$work/callgrind.out" 2>/dev/null | grep -v '=>' \
  | grep '???:0x' > "$work/jit.txt" || {
  echo "callgrind saw no JIT code: did the bench run query $query?" >&2
  exit 1
}
python3 - "$map" "$work/jit.txt" $((2 * records)) <<'PY'
import bisect, collections, re, sys
path, jit, records = sys.argv[1:]
symbols = []
for line in open(path):
    start, size, name = line.rstrip("\n").split(" ", 2)
    symbols.append((int(start, 16), int(size, 16), re.sub(r"::h[0-9a-f]{16}$", "", name)))
symbols.sort()
starts = [s[0] for s in symbols]
by_function = collections.Counter()
for line in open(jit):
    m = re.match(r"\s*([\d,]+)\s+\?\?\?:0x([0-9a-f]+)", line)
    if not m:
        continue
    count, addr = int(m.group(1).replace(",", "")), int(m.group(2), 16)
    i = bisect.bisect_right(starts, addr) - 1
    inside = i >= 0 and addr < symbols[i][0] + symbols[i][1]
    by_function[symbols[i][2] if inside else "(unnamed)"] += count
records = int(records)
print(f"guest instructions per record: {sum(by_function.values()) / records:.0f}")
for name, count in by_function.most_common(20):
    if count / records >= 1:
        print(f"{count / records:8.0f}  {name[:150]}")
PY
