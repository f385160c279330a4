#!/usr/bin/env bash
# Runs the whole test suite: formatting, go vet, and go test -race over every package, including the
# integration tests against DynamoDB Local (fetched once into ~/.cache/poller) and moto.
#
#   scripts/test.sh              # everything
#   scripts/test.sh ./pkg/...    # some packages
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

echo "== fetching test components"
scripts/dynamodb-local.sh fetch >/dev/null
command -v java >/dev/null || { echo "java (17+) is required to run DynamoDB Local" >&2; exit 1; }
python3 -c 'import moto.server' 2>/dev/null || { echo "moto is required: python3 -m pip install 'moto[server]'" >&2; exit 1; }

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet "${pkgs[@]}"

echo "== go test -race"
go test -race -count=1 -timeout 20m "${pkgs[@]}"
