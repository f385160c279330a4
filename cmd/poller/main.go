// Command poller runs DynamoDB Streams pipelines: a self-hosted replacement for AWS Lambda's
// DynamoDB Streams trigger. See README.md; the command line itself is pkg/cli.
package main

import "github.com/poller-dev/poller/pkg/cli"

// version is set at build time with -ldflags "-X main.version=..."; else the module version.
var version = ""

func main() { cli.Main(cli.WithVersion(version)) }
