// Command customsink is poller with one more sink type, "changelog" (package changelog): the whole
// of a custom build is the blank import that registers the type and a call to cli.Main.
//
//	go build -o poller .
//	./poller validate --config poller.yaml
//	./poller run --config poller.yaml
package main

import (
	"github.com/poller-dev/poller/pkg/cli"

	_ "github.com/poller-dev/poller/examples/customsink/changelog"
)

func main() { cli.Main() }
