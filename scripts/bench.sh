#!/usr/bin/env bash
# Measures poller against DynamoDB Local and writes bench-report.txt: records/s draining a 20,000-record
# backlog (beside a bare GetRecords loop on the same stream) and write-to-sink latency at the default
# 250 ms poll interval. Also runs the filter and event-encoding micro-benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dynamodb-local.sh fetch >/dev/null
out=${1:-bench-report.txt}
{
  echo "# poller benchmarks, $(date -u +%FT%TZ), $(nproc) cores, $(go version)"
  go test -run '^$' -bench . -benchtime 1x -timeout 20m ./test/bench
  go test -run '^$' -bench 'Match' -benchmem ./pkg/filter
} 2>&1 | tee "$out"
echo "report: $out"
