package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
)

// runCommand runs every pipeline of the config until a signal or ctx stops it (see Run), reporting
// version as its own.
func runCommand(ctx context.Context, args []string, stderr io.Writer, version string) int {
	cfg, ok := loadConfig("run", args, stderr)
	if !ok {
		return ExitUsage
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "poller: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	for _, w := range config.Warnings(cfg) {
		log.Warn("config warning", zap.String("warning", w.Error()))
	}

	// The service runs on a context of its own: ctx asks for a graceful stop, as a signal does, and
	// only a forced stop cancels the service's context.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	svc, err := service.New(runCtx, cfg, log, service.WithVersion(version))
	if err != nil {
		log.Error("poller cannot start", zap.Error(err))
		return ExitFailure
	}
	stop, forced, done := stopOnSignal(ctx, cancel, cfg.ShutdownTimeout, log)
	defer done()
	if err := svc.Run(runCtx, stop); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("poller failed", zap.Error(err))
		return ExitFailure
	}
	if forced.Load() {
		// Batches were cut off and leases left to expire: the documented 0 means a clean stop.
		log.Error("poller stopped before its drain finished; in-flight batches are delivered again by the next owner")
		return ExitFailure
	}
	return ExitOK
}

// stopOnSignal watches for SIGTERM and SIGINT. The first one, or ctx being done, closes stop: the
// service drains gracefully. A second signal, or the drain outliving shutdown, stops at once: forced
// is set and cancel is called, which cancels every delivery in flight (each sink honours its context,
// so a blocked write cannot hold the process). done ends the watch; its goroutine has returned when
// done does.
func stopOnSignal(ctx context.Context, cancel context.CancelFunc, shutdown time.Duration, log *zap.Logger) (stop <-chan struct{}, forced *atomic.Bool, done func()) {
	stopC := make(chan struct{})
	forced = new(atomic.Bool)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case s := <-sigs:
			log.Info("signal received; draining in-flight batches, checkpointing and releasing leases", zap.String("signal", s.String()))
		case <-ctx.Done():
			log.Info("stop requested; draining in-flight batches, checkpointing and releasing leases")
		case <-quit:
			return
		}
		close(stopC)
		t := time.NewTimer(shutdown)
		defer t.Stop()
		select {
		case s := <-sigs:
			log.Warn("second signal; stopping at once", zap.String("signal", s.String()))
		case <-t.C:
			log.Warn("graceful shutdown took too long; stopping at once", zap.Duration("shutdown_timeout", shutdown))
		case <-quit:
			return
		}
		forced.Store(true)
		cancel()
	}()
	return stopC, forced, func() {
		signal.Stop(sigs)
		close(quit)
		<-exited
	}
}

// newLogger builds the zap logger the config's log section describes, writing to w.
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
