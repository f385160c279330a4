// Command poller runs DynamoDB Streams pipelines: a self-hosted replacement for AWS Lambda's
// DynamoDB Streams trigger. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
)

// version is set at build time with -ldflags "-X main.version=..."; else the module version.
var version = ""

// Exit codes, as the README documents them.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  poller run --config FILE        run every pipeline until SIGTERM/SIGINT
  poller validate --config FILE   check a config file and print what is wrong
  poller version                  print the version

--config may also come from the POLLER_CONFIG environment variable.
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "poller", versionString())
		return exitOK
	case "help", "--help", "-h":
		usage(stdout)
		return exitOK
	case "run", "validate":
	default:
		fmt.Fprintf(stderr, "poller: unknown command %q\n", cmd)
		usage(stderr)
		return exitConfig
	}
	fs := flag.NewFlagSet("poller "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("POLLER_CONFIG"), "config file (default $POLLER_CONFIG)")
	if err := fs.Parse(rest); err != nil {
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "poller %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return exitConfig
	}
	if *path == "" {
		fmt.Fprintf(stderr, "poller %s: no config: give --config FILE or set POLLER_CONFIG\n", cmd)
		return exitConfig
	}
	cfg, err := config.Load(*path, service.Registries())
	if err != nil {
		for _, e := range config.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		if len(config.Errors(err)) == 0 {
			fmt.Fprintln(stderr, err)
		}
		return exitConfig
	}
	if cmd == "validate" {
		warnings := config.Warnings(cfg)
		for _, w := range warnings {
			fmt.Fprintln(stderr, w)
		}
		fmt.Fprintf(stdout, "%s: valid (%d pipeline(s), %d warning(s))\n", *path, len(cfg.Pipelines), len(warnings))
		return exitOK
	}
	return serve(cfg, stderr)
}

func serve(cfg *config.Config, stderr io.Writer) int {
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "poller: %v\n", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()
	for _, w := range config.Warnings(cfg) {
		log.Warn("config warning", zap.String("warning", w.Error()))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := service.New(ctx, cfg, log)
	if err != nil {
		log.Error("poller cannot start", zap.Error(err))
		return exitRuntime
	}

	// The first SIGTERM/SIGINT drains gracefully; a second one, or the drain outliving
	// shutdown_timeout, stops at once: every delivery in flight is canceled (each sink honours its
	// context, so a blocked write cannot hold the process) and poller exits 1.
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	var forced atomic.Bool // the drain was cut short: not a clean stop
	go func() {
		select {
		case s := <-sigs:
			log.Info("signal received; draining in-flight batches, checkpointing and releasing leases", zap.String("signal", s.String()))
			close(stop)
		case <-done:
			return
		}
		t := time.NewTimer(cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case s := <-sigs:
			log.Warn("second signal; stopping at once", zap.String("signal", s.String()))
		case <-t.C:
			log.Warn("graceful shutdown took too long; stopping at once", zap.Duration("shutdown_timeout", cfg.ShutdownTimeout))
		case <-done:
			return
		}
		forced.Store(true)
		cancel()
	}()

	if err := a.Run(ctx, stop); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("poller failed", zap.Error(err))
		return exitRuntime
	}
	if forced.Load() {
		// Batches were cut off and leases left to expire: the documented 0 means a clean stop.
		log.Error("poller stopped before its drain finished; in-flight batches are delivered again by the next owner")
		return exitRuntime
	}
	return exitOK
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(string(c.Level))
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
