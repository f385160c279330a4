#!/usr/bin/env bash
# Measures poller's peak resident memory (VmHWM) on one shard of 350 KB items behind a slow http
# sink (300 ms a call), batch_size 100, parallelization_factor 1 and 4, default memory budgets,
# against DynamoDB Local, and writes bench-memory-report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dynamodb-local.sh fetch >/dev/null
out=${1:-bench-memory-report.txt}
{
  echo "# poller peak RSS, $(date -u +%FT%TZ), $(nproc) cores, $(go version)"
  go test -run '^$' -bench 'PeakRSS' -benchtime 1x -timeout 30m ./test/bench
} 2>&1 | tee "$out"
echo "report: $out"
