// Package service wires a loaded config into a running poller: logger, metrics, AWS clients, the lease
// table, sinks, filters, pipelines and the HTTP server, run as one group.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/filter"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/membudget"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/pipeline"
	"github.com/poller-dev/poller/pkg/server"
	"github.com/poller-dev/poller/pkg/sinks"
)

// awsCallTimeout bounds one HTTP exchange with DynamoDB or DynamoDB Streams (the SDK retries).
const awsCallTimeout = 10 * time.Second

// App is a configured poller, ready to run.
type App struct {
	cfg       *config.Config
	log       *zap.Logger
	store     *checkpoint.Store
	pipelines []*pipeline.Pipeline
	closers   []closer // sinks and on_failure destinations, closed after the pipelines stop
	server    *server.Server
	ready     *server.Readiness
	health    *health
	workerID  string
}

// Registries are the plugin types the config loader accepts.
func Registries() config.Registries {
	return config.Registries{
		Sinks:        sinks.ConfigTypes(),
		Destinations: onfailure.ConfigTypes(),
		CheckFilter: func(pattern []byte) error {
			_, err := filter.Compile(pattern)
			return err
		},
	}
}

// New builds everything the config describes. Nothing runs until Run.
func New(ctx context.Context, cfg *config.Config, log *zap.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, ready: &server.Readiness{}}
	a.ready.Set(false, "starting")
	a.health = &health{ready: a.ready, rounds: map[string]error{}}
	defer func() {
		if err != nil {
			a.closeSinks(context.WithoutCancel(ctx))
		}
	}()

	var opts []func(*awsconfig.LoadOptions) error
	if cfg.AWS.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.AWS.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	awsCfg.Logger = sdkLogger(log)
	// The SDK's default client has no overall timeout: one hung connection would freeze a
	// pipeline's lease round (renewals, heartbeat, failover). Every call poller makes is small
	// (GetRecords answers at most 1 MB), so a whole exchange gets awsCallTimeout.
	awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(awsCallTimeout)
	// The SDK's standard retryer keeps a client-wide retry quota; a long throttling spell empties it
	// and from then on calls fail without their retries. A daemon that retries everything itself
	// with backoff wants the SDK's per-call retries always, so the quota is off.
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
	}
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.AWS.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.AWS.EndpointURL)
		}
	})
	streams := dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		if cfg.AWS.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.AWS.EndpointURL)
		}
	})

	a.workerID = cfg.Leases.WorkerID
	if a.workerID == "" {
		a.workerID = defaultWorkerID()
	}
	a.log = log.With(zap.String("worker_id", a.workerID))
	a.store = checkpoint.New(ddb, cfg.Leases.Table)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	// One memory budget for the whole process: every shard of every pipeline reads within it.
	memory := membudget.New(int64(cfg.Memory.MaxBufferedBytes))
	for i, pc := range cfg.Pipelines {
		sink, err := sinks.New(pc.Sink.Type, pc.Sink.Config, sinks.Deps{
			Logger: a.log.With(zap.String("pipeline", pc.Name)), AWS: awsCfg,
			ReportBatchItemFailures: pc.ReportBatchItemFailures,
		})
		if err != nil {
			return nil, fmt.Errorf("pipelines[%d] (%s): sink: %w", i, pc.Name, err)
		}
		a.closers = append(a.closers, sink)
		var dest onfailure.Destination
		if pc.OnFailure != nil {
			if dest, err = onfailure.New(pc.OnFailure.Type, pc.OnFailure.Config, onfailure.Deps{
				Logger: a.log.With(zap.String("pipeline", pc.Name)), AWS: awsCfg,
			}); err != nil {
				return nil, fmt.Errorf("pipelines[%d] (%s): on_failure: %w", i, pc.Name, err)
			}
			a.closers = append(a.closers, dest)
		}
		var set filter.Set
		for j, f := range pc.Filters {
			pat, err := filter.Compile([]byte(f.Pattern))
			if err != nil {
				return nil, fmt.Errorf("pipelines[%d].filters[%d]: %w", i, j, err)
			}
			set = append(set, pat)
		}
		var match dispatch.Matcher // stays nil without filters: a nil Set in an interface would not be
		if len(set) > 0 {
			match = set
		}
		p, err := pipeline.New(pc, pipeline.Deps{
			Streams: streams, Tables: ddb, Store: a.store, Sink: sink, OnFailure: dest, Filter: match,
			WorkerID: a.workerID, LeaseDuration: cfg.Leases.LeaseDuration, RenewInterval: cfg.Leases.RenewInterval,
			Log: a.log, Hooks: []hooks.Hook{m.Pipeline(pc.Name), a.health.pipeline(pc.Name)},
			Memory: memory, ShardMemory: int64(cfg.Memory.MaxBufferedBytesPerShard),
		})
		if err != nil {
			return nil, err
		}
		a.pipelines = append(a.pipelines, p)
	}
	if cfg.Server.Listen != "" {
		if a.server, err = server.New(cfg.Server.Listen, reg, a.ready); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Addr is the HTTP server's address, "" without a server.
func (a *App) Addr() string {
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}

// Run runs until stop is closed (graceful: pipelines drain, checkpoint and release their leases;
// Run returns nil) or ctx is canceled, or something fails (the error).
func (a *App) Run(ctx context.Context, stop <-chan struct{}) error {
	defer a.closeSinks(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	srvCtx, stopServer := context.WithCancel(gctx)
	defer stopServer()
	if a.server != nil {
		g.Go(func() error { return a.server.Run(srvCtx) })
		a.log.Info("serving /metrics, /healthz, /readyz", zap.String("listen", a.server.Addr()))
	}
	g.Go(func() error {
		defer stopServer()
		if err := a.ensureTable(gctx, stop); err != nil {
			return err
		}
		a.health.started(len(a.pipelines))
		a.log.Info("poller started", zap.Int("pipelines", len(a.pipelines)), zap.String("lease_table", a.cfg.Leases.Table))
		pg, pctx := errgroup.WithContext(gctx)
		for _, p := range a.pipelines {
			pg.Go(func() error {
				if err := p.Run(pctx, stop); err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("pipeline %s: %w", p.Name, err)
				}
				return nil
			})
		}
		// Readiness flips before draining, so traffic and probes move on while batches finish.
		go func() {
			select {
			case <-stop:
				a.health.stopping()
			case <-pctx.Done():
			}
		}()
		return pg.Wait()
	})
	err := g.Wait()
	if err == nil || (errors.Is(err, context.Canceled) && isClosed(stop)) {
		a.log.Info("poller stopped")
		return nil
	}
	return err
}

// ensureTable checks (and, with create_table, creates) the lease table, retrying while it is
// unreachable: readiness stays false meanwhile.
func (a *App) ensureTable(ctx context.Context, stop <-chan struct{}) error {
	for attempt := 1; ; attempt++ {
		err := a.store.EnsureTable(ctx, a.cfg.Leases.CreateTable)
		if err == nil {
			return nil
		}
		if errors.Is(err, checkpoint.ErrNoTable) || errors.Is(err, checkpoint.ErrTableSchema) {
			// Waiting cannot fix these: the table is missing and create_table is false, or it has
			// another key schema (not a poller lease table).
			return fmt.Errorf("lease table %s: %w", a.cfg.Leases.Table, err)
		}
		a.ready.Set(false, "lease table unreachable: "+err.Error())
		a.log.Warn("lease table not ready; retrying", zap.String("table", a.cfg.Leases.Table), zap.Int("attempt", attempt), zap.Error(err))
		t := time.NewTimer(min(time.Duration(attempt)*time.Second, 15*time.Second))
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

type closer interface {
	Close(ctx context.Context) error
}

// closeTimeout bounds closing the sinks and destinations once the pipelines stopped: it is what the
// process may take beyond shutdown_timeout (README).
const closeTimeout = 2 * time.Second

func (a *App) closeSinks(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	for _, c := range a.closers {
		if err := c.Close(ctx); err != nil {
			a.log.Warn("closing a sink or destination failed", zap.Error(err))
		}
	}
	a.closers = nil
}

// sdkLogger sends the AWS SDK's own log lines to zap at debug level: they are diagnostics (retries,
// and a checksum warning DynamoDB Local's error answers always cause), not events an operator acts on;
// every failure that matters reaches poller as an error and is logged where it is handled.
func sdkLogger(log *zap.Logger) logging.Logger {
	l := log.Named("aws-sdk")
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		if ce := l.Check(zap.DebugLevel, fmt.Sprintf(format, v...)); ce != nil {
			ce.Write(zap.String("sdk_level", string(c)))
		}
	})
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// defaultWorkerID is the hostname plus a random suffix, so two processes on one host never share an ID.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "poller"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// health derives /readyz from the pipelines' lease rounds: ready once every pipeline's last round
// reached the lease table, not ready while any pipeline's last round failed, and not ready again
// from the start of a shutdown on.
type health struct {
	ready  *server.Readiness
	mu     sync.Mutex
	want   int              // pipelines started; 0 until then
	done   bool             // shutting down
	rounds map[string]error // pipeline -> its last round's error
}

// pipeline returns the hook that tells h each lease round's outcome of one pipeline.
func (h *health) pipeline(name string) hooks.HookLeaseRound { return leaseRounds{h, name} }

// leaseRounds records a pipeline's lease rounds in its health.
type leaseRounds struct {
	h        *health
	pipeline string
}

func (r leaseRounds) OnLeaseRound(err error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.rounds[r.pipeline] = err
	r.h.update()
}

func (h *health) started(pipelines int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.want = pipelines
	h.update()
}

func (h *health) stopping() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	h.update()
}

// update sets readiness; h.mu is held.
func (h *health) update() {
	switch {
	case h.done:
		h.ready.Set(false, "shutting down")
		return
	case h.want == 0:
		return // still starting; the reason stays as set
	}
	for _, p := range slices.Sorted(maps.Keys(h.rounds)) {
		if err := h.rounds[p]; err != nil {
			h.ready.Set(false, fmt.Sprintf("pipeline %s: lease table unreachable: %v", p, err))
			return
		}
	}
	if len(h.rounds) < h.want {
		h.ready.Set(false, "starting pipelines")
		return
	}
	h.ready.Set(true, "ready")
}
