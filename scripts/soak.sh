#!/usr/bin/env bash
# Soak test (not run in CI; a short version of it is part of `go test`): kills a poller process with
# kill -9 at random moments 50 times while 100,000 records flow through 4 shards of the Streams test
# endpoint, once with parallelization_factor 1 and once with 4, then checks that no record was lost,
# that each partition key's records arrived in order (a redelivery may repeat a suffix already
# delivered) and that duplicates stayed within 2 x batch_size x parallelization_factor (two batches
# per lane) per shard per kill.
# Writes the figures to soak-report.txt (or the file given as $1).
#
#   SOAK_KILLS=50 SOAK_RECORDS=100000 SOAK_SEED=<random> scripts/soak.sh [report-file]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dynamodb-local.sh fetch >/dev/null
out=$(realpath -m "${1:-soak-report.txt}")
export SOAK_KILLS=${SOAK_KILLS:-50} SOAK_RECORDS=${SOAK_RECORDS:-100000} SOAK_SEED=${SOAK_SEED:-$RANDOM}
export SOAK_REPORT=$out.lines
rm -f "$SOAK_REPORT"
status=0
start=$(date +%s)
go test -race -count=1 -timeout 90m -run 'TestKill9Soak' -v ./test/soak >"$out.log" 2>&1 || status=$?
{
  echo "# poller soak, $(date -u +%FT%TZ), $(nproc) cores, $(go version)"
  echo "# kill -9 x $SOAK_KILLS at random moments (seed $SOAK_SEED), $SOAK_RECORDS records through 4 shards, per parallelization_factor"
  cat "$SOAK_REPORT" 2>/dev/null || echo "no figures: the run failed before reporting"
  echo "# whole soak: $(( $(date +%s) - start )) s; go test exit status $status (log: $(basename "$out").log)"
  grep -E '^\s+soak_test.go:[0-9]+: ' "$out.log" | grep -v 'log (tail)' || true
} | tee "$out"
rm -f "$SOAK_REPORT"
exit $status
