#!/usr/bin/env bash
# Measures what poller costs at many shards and writes bench-scale-report.txt (test/bench/scale):
# the real binary, built without -race, with its defaults, against the Streams test endpoint with N
# open shards and the lease table in a fresh DynamoDB Local, all on this machine.
#
#   scripts/bench-scale.sh                    # the set the README reports (about an hour on 2 cores)
#   scripts/bench-scale.sh idle 1000          # one scenario: idle | busy | sigterm | balance, and its shards
#   scripts/bench-scale.sh idle 1000 -scale.idle_poll_interval 1s -scale.window 10m
#                                             # harness flags after it (see go doc ./test/bench/scale)
#
# BENCH_SCALE_REPORT names the report (default bench-scale-report.txt); the pollers' logs go to the
# folder BENCH_SCALE_LOGS (default bench-scale-logs). Each scenario has deadlines
# and stops every process it started; a failed scenario is reported and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/dynamodb-local.sh fetch >/dev/null || exit 1
out=${BENCH_SCALE_REPORT:-bench-scale-report.txt}
logs=${BENCH_SCALE_LOGS:-bench-scale-logs}
[[ $logs == /* ]] || logs=$PWD/$logs # go test runs in the package's folder

run() {
  go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -timeout 4h ./test/bench/scale -args -scale.logs "$logs" "$@" || {
    echo "FAILED: bench-scale $*"
  }
}

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

scenario=
if [ $# -ge 2 ]; then
  case "$1" in
    idle | busy | sigterm | balance) ;;
    *) usage ;;
  esac
  [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
  scenario=$1/$2
  shift 2
elif [ $# -ne 0 ]; then
  usage
fi

started=$(date +%s)
{
  echo "# poller at scale, $(date -u +%FT%TZ), $(nproc) cores, $(go version), $(git rev-parse --short HEAD 2>/dev/null)"
  if [ -n "$scenario" ]; then
    run -scale.scenarios "$scenario" "$@"
  else
    run -scale.scenarios idle/100,idle/1000
    run -scale.scenarios idle/4000 -scale.window 10m
    run -scale.scenarios idle/100,idle/1000,idle/4000 -scale.idle_poll_interval 1s
    run -scale.scenarios busy/1000,sigterm/4000,balance/10000
  fi
  echo "# took $(( ($(date +%s) - started) / 60 )) min"
} 2>&1 | tee "$out"
echo "report: $out"
grep -q '^FAILED: ' "$out" && exit 1
exit 0
