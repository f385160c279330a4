#!/usr/bin/env bash
# Measures poller against DynamoDB Local and writes bench-report.txt:
#   - the per-record path: a bare GetRecords loop and poller's stdout-sink drain of a 20,000-record
#     backlog on one shard, side by side (batch_size 1000 and 100): steady records/s and CPU per
#     record of the reading process, and poller's ratios to the bare loop run just before it;
#   - records/s draining the same backlog to an http sink, and write-to-sink latency at the default
#     250 ms poll interval;
#   - the filter and event-encoding micro-benchmarks.
# COUNT=3 scripts/bench.sh repeats the drains (one table row per run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dynamodb-local.sh fetch >/dev/null
out=${1:-bench-report.txt}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# table prints BenchmarkDrainStdout's metrics (pairs of value and name) side by side.
table() {
  awk '
    /^BenchmarkDrainStdout/ {
      run++
      delete m
      for (i = 5; i < NF; i += 2) m[$(i + 1)] = $i
      for (bs = 1000; bs >= 100; bs /= 10) {
        p = "batch" bs "_"
        if (!((p "bare_records/s") in m)) continue
        printf "%-4s %-16s %-7s %12.0f %16.2f %12.3f\n", run, "batch_size " bs, "bare", m[p "bare_records/s"], m[p "bare_cpu_us/record"], m[p "bare_cpu_total_s"]
        printf "%-4s %-16s %-7s %12.0f %16.2f %12.3f\n", run, "", "poller", m[p "poller_records/s"], m[p "poller_cpu_us/record"], m[p "poller_cpu_total_s"]
        verdict = ""
        if (bs == 1000) verdict = "target >= 0.9x, <= 1.5x: " ((m[p "rate_x_bare"] >= 0.9 && m[p "cpu_x_bare"] <= 1.5) ? "met" : "NOT met")
        printf "%-4s %-16s %-7s %11.2fx %15.2fx   %s\n", run, "", "ratio", m[p "rate_x_bare"], m[p "cpu_x_bare"], verdict
      }
    }' "$raw"
}

{
  echo "# poller benchmarks, $(date -u +%FT%TZ), $(nproc) cores, $(go version)"
  echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  go test -run '^$' -bench '^Benchmark(DrainStdout|Drain|Latency)$' -benchtime 1x -count "${COUNT:-1}" -timeout 30m ./test/bench | tee "$raw"
  echo
  echo "# stdout-sink drain beside a bare GetRecords loop (Limit 1000), 20,000 records, one shard of DynamoDB Local."
  echo "# Steady part: first output to last. CPU: the reading process (user + system), per record after the first output;"
  echo "# total: the whole drain, start-up included. Ratios: poller / the bare drain run just before it."
  printf "%-4s %-16s %-7s %12s %16s %12s\n" "run" "" "" "records/s" "CPU us/record" "CPU total s"
  table
  echo "# load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  go test -run '^$' -bench 'Match' -benchmem ./pkg/filter
  go test -run '^$' -bench 'RecordJSON|FromStreams' -benchmem ./pkg/event
} 2>&1 | tee "$out"
echo "report: $out"
