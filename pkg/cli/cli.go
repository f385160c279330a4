// Package cli is poller's command line as a library: the `run`, `validate`, `status`, `pause`,
// `resume`, `reset`, `version` and `help` commands of the poller binary, with its flags, logging, signal handling and exit codes.
//
// It sits at the very top: it loads the config (pkg/config, checked against the sink and on_failure
// types registered at that moment), hands it to pkg/service, which wires and runs the pipelines, and
// turns the outcome into an exit code. cmd/poller is nothing but a call to Main.
//
// A Go module that adds its own sink (or on_failure destination) type builds its own poller binary
// with a main of a few lines: the sink's package registers the type in its init (sinks.Register,
// onfailure.Register), a blank import pulls it in, and Main runs poller's command line, which knows
// the type from then on. The config loader checks a custom type's keys exactly as a built-in one's:
// unknown keys, type errors and the errors of its Validate method are reported as file:line errors.
//
//	package main
//
//	import (
//		"github.com/poller-dev/poller/pkg/cli"
//
//		_ "example.com/mysink" // registers the "mysink" sink type in its init
//	)
//
//	func main() { cli.Main() }
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Exit codes of the poller command line, as the README documents them.
const (
	// ExitOK: the command did what it was asked; for run, a clean stop after SIGTERM or SIGINT.
	ExitOK = 0
	// ExitFailure: run failed at start or while running, or its graceful drain was cut short.
	ExitFailure = 1
	// ExitUsage: bad usage (an unknown command, a missing or stray argument) or an invalid config.
	ExitUsage = 2
)

// Option changes how Main and Run behave.
type Option func(*settings)

type settings struct {
	version string
}

// WithVersion sets what `poller version` prints. Without it, the version is the main module's
// version from the build info when the binary is poller itself, else the version of the poller
// module the binary was built with, else "dev".
func WithVersion(v string) Option {
	return func(s *settings) { s.version = v }
}

// Main runs the command line given to the process (os.Args) and exits with its exit code. It is
// meant to be all that a main function does.
func Main(opts ...Option) {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, opts...))
}

// Run runs one command line, args without the program name (e.g. "run", "--config", "poller.yaml"),
// writing output to stdout and messages and logs to stderr, and returns the exit code (ExitOK,
// ExitFailure or ExitUsage).
//
// The run command runs until SIGTERM or SIGINT, or until ctx is done, which counts as the first
// signal: poller drains gracefully (finishes the batches in flight, checkpoints them, releases its
// leases) and Run returns ExitOK. A second signal, or a drain longer than shutdown_timeout, stops at
// once and Run returns ExitFailure. The other commands do not wait for ctx.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...Option) int {
	s := settings{}
	for _, o := range opts {
		o(&s)
	}
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "poller", versionString(s.version))
		return ExitOK
	case "help", "--help", "-h":
		usage(stdout)
		return ExitOK
	case "run": // the one command that reports its version (poller_build_info, /status)
		return runCommand(ctx, rest, stderr, versionString(s.version))
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "poller: unknown command %q\n", name)
		usage(stderr)
		return ExitUsage
	}
	return cmd(ctx, rest, stdout, stderr)
}

// commands are the commands that take a config, by name.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"validate":    validateCommand,
	"healthcheck": healthcheckCommand,
	"status":      statusCommand,
	"pause":       pauseCommand,
	"resume":      resumeCommand,
	"reset":       resetCommand,
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  poller run --config FILE        run every pipeline until SIGTERM/SIGINT
  poller validate --config FILE   check a config file and print what is wrong
  poller status --config FILE [--pipeline P] [--json]
                                  what the lease table says: paused, workers, shards, lag
  poller pause --config FILE --pipeline P
                                  every replica stops reading P within renew_interval
  poller resume --config FILE --pipeline P
                                  reading restarts from the checkpoints
  poller reset --config FILE --pipeline P --to TRIM_HORIZON|LATEST|TIME [--shard ID]
                                  move a paused pipeline's checkpoints
  poller healthcheck [--url URL]  exit 0 if a local poller's /healthz answers 200, else 1
  poller version                  print the version

--config may also come from the POLLER_CONFIG environment variable.
`)
}
