#!/usr/bin/env bash
# Runs the whole test suite: formatting, go vet, and go test -race over every package, including the
# integration tests against DynamoDB Local (fetched once into ~/.cache/poller) and moto; checks that
# the public packages (pkg/...) import no internal package; and does the same for the example
# module examples/customsink, which builds poller with a sink of its own, and for deploy/check, which
# renders and validates the deploy kit (Helm, Kustomize, ECS, IAM, alerts, dashboard) and
# cross-compiles the image's binaries.
#
#   scripts/test.sh              # everything
#   scripts/test.sh ./pkg/...    # some packages of the root module (not the example module)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=("$@")
# Modules of their own inside the repository, tested when everything is.
modules=()
if [ ${#pkgs[@]} -eq 0 ]; then
  pkgs=(./...)
  modules=(examples/customsink deploy/check)
fi

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

echo "== public packages import no internal package"
# pkg/... is an API other modules build on: what it needs cannot live under internal/.
leaks=$(go list -deps ./pkg/... | grep '^github.com/poller-dev/poller/internal/' || true)
if [ -n "$leaks" ]; then
  echo "public packages depend on internal packages (go list -deps ./pkg/... shows the way):" >&2
  echo "$leaks" >&2
  exit 1
fi

echo "== go vet"
go vet "${pkgs[@]}"

echo "== go test -race"
# The modules (go vet and go test, mostly compiling Helm, Kubernetes and the example) run beside the
# root module's tests, whose end-to-end tests spend most of their time waiting on timers: the run
# takes as long as the longer of the two, not their sum. Their output is printed after the root's.
modlog=$(mktemp)
trap 'rm -f "$modlog"' EXIT
(
  for m in "${modules[@]}"; do
    (cd "$m" && go vet ./... && go test -race -count=1 -timeout 15m ./...) || exit 1
  done
) >"$modlog" 2>&1 &
modpid=$!
rootrc=0
go test -race -count=1 -timeout 20m "${pkgs[@]}" || rootrc=$?
modrc=0
wait "$modpid" || modrc=$?
[ ${#modules[@]} -eq 0 ] || { echo "== go vet and go test -race: ${modules[*]}"; cat "$modlog"; }
[ "$rootrc" -eq 0 ] && [ "$modrc" -eq 0 ]
