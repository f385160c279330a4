// Package service runs a poller: it wires a config into AWS clients, the lease table, sinks, on_failure
// destinations, filters, pipelines and the HTTP server (/metrics, /healthz, /readyz, /status), and runs them as
// one group until a graceful stop or a failure.
//
// It sits between the config (pkg/config) and the pipelines (pkg/pipeline): pkg/cli loads a config
// file and calls New and Run; a Go program that builds its config in code does the same without the
// command line:
//
//	cfg := config.Default()
//	p := config.DefaultPipeline()
//	p.Name = "orders"
//	p.Source.Table = "Orders"
//	p.Sink = config.Plugin{Type: "mysink", Config: &mysink.Config{...}}
//	cfg.Pipelines = []config.Pipeline{p}
//	svc, err := service.New(ctx, &cfg, log)
//	...
//	err = svc.Run(ctx, stop) // close stop to drain gracefully
//
// New checks a config built in code by the rules a config file is checked by (config.Validate), so
// an out-of-range value or an unregistered sink type is an error naming its key path.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
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
	"github.com/poller-dev/poller/pkg/pace"
	"github.com/poller-dev/poller/pkg/pipeline"
	"github.com/poller-dev/poller/pkg/server"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// App is a configured poller, ready to run: made by New, run once by Run.
type App struct {
	cfg       *config.Config
	log       *zap.Logger
	store     *checkpoint.Store
	pipelines []*pipeline.Pipeline
	closers   []closer // sinks and on_failure destinations, closed after the pipelines stop
	server    *server.Server
	ready     *server.Readiness
	health    *health
	status    *statusBoard
	// version is poller's version, for poller_build_info and /status (WithVersion).
	version string
	// extraHooks, if set (WithHooks), gives each pipeline hooks of the caller's.
	extraHooks func(pipeline string) []hooks.Hook
}

// Registries are the sink and on_failure types registered at the moment of the call (the built-in
// ones and every type a blank-imported package registered in its init), and the filter compiler: what
// config.Load and config.Parse check a config file against.
func Registries() config.Registries {
	return config.Registries{
		Sinks:        sinks.Registry.ConfigTypes(),
		Destinations: onfailure.Registry.ConfigTypes(),
		CheckFilter: func(pattern []byte) error {
			_, err := filter.Compile(pattern)
			return err
		},
	}
}

// Option changes what New builds.
type Option func(*App)

// WithHooks adds observers to every pipeline, beside the Prometheus metrics and the readiness
// check: f(name) returns the hooks of the pipeline called name (see package hooks for the
// interfaces a hook may implement), e.g. a tracer or an audit log. It is called once per pipeline,
// in New.
func WithHooks(f func(pipeline string) []hooks.Hook) Option {
	return func(a *App) { a.extraHooks = f }
}

// WithVersion sets the version poller_build_info and /status report; without it, "dev". The
// poller command line sets the version it prints.
func WithVersion(v string) Option {
	return func(a *App) { a.version = v }
}

// shared is what every pipeline of one process uses alike.
type shared struct {
	aws     aws.Config
	ddb     *dynamodb.Client
	streams *dynamodbstreams.Client
	metrics *metrics.Metrics
	// memory is the budget of the whole process: every shard of every pipeline reads within it.
	memory *membudget.Budget
	// fleet is the lease view of the whole process: the fair share is one over every pipeline.
	fleet *checkpoint.Fleet
	// pace slows every reader of the process down while its lease renewals fall behind.
	pace     *pace.Governor
	workerID string
}

// New builds everything cfg describes: AWS clients (credentials from the SDK's default chain), the
// lease table client, each pipeline with its sink, on_failure destination and filters, and the HTTP
// server when cfg.Server.Listen is set (it listens from here on). Nothing reads a stream until Run.
// log receives every log line, scoped with the worker ID. cfg must not change from here on.
//
// An invalid cfg is an error that config.Errors lists, each naming its key path (config.Validate).
func New(ctx context.Context, cfg *config.Config, log *zap.Logger, opts ...Option) (_ *App, err error) {
	if err := config.Validate(cfg, Registries()); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	a := &App{cfg: cfg, log: log, ready: &server.Readiness{}, version: "dev"}
	for _, o := range opts {
		o(a)
	}
	a.ready.Set(false, "starting")
	a.health = newHealth(a.ready, cfg.Leases.LeaseDuration, time.Now)
	defer func() {
		if err != nil {
			a.closeSinks(context.WithoutCancel(ctx))
		}
	}()
	awsCfg, err := loadAWS(ctx, cfg.AWS, log)
	if err != nil {
		return nil, err
	}
	s := shared{aws: awsCfg, workerID: workerID(cfg.Leases.WorkerID),
		memory: membudget.New(int64(cfg.Memory.MaxBufferedBytes)), fleet: checkpoint.NewFleet()}
	s.ddb, s.streams = newClients(awsCfg, cfg.AWS.EndpointURL)
	a.log = log.With(zap.String("worker_id", s.workerID))
	a.store = checkpoint.New(s.ddb, cfg.Leases.Table)
	a.status = newStatusBoard(s.workerID, a.version, time.Now)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), a.ready.Collector())
	s.metrics = metrics.New(reg)
	s.metrics.SetVersion(a.version)
	s.pace = pace.New(maxPollSlowdown, s.metrics.PollSlowdown.Set, nil)
	for i, pc := range cfg.Pipelines {
		if !pc.IsEnabled() {
			// Lambda's Enabled: false. Nothing reads it or touches its leases; they wait in the table.
			a.log.Info("pipeline disabled (enabled: false): not started; its leases and checkpoints are kept", zap.String("pipeline", pc.Name))
			hooks.New(a.observersOf(pc.Name, s.metrics)...).OnPipelinePaused(true)
			continue
		}
		p, err := a.newPipeline(i, pc, s)
		if err != nil {
			return nil, err
		}
		a.pipelines = append(a.pipelines, p)
	}
	if cfg.Server.Listen != "" {
		a.server, err = server.New(cfg.Server.Listen, reg, a.ready,
			server.WithLiveness(a.health.live), server.WithStatus(func() any { return a.Status() }))
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// newPipeline builds pipeline i with its sink, on_failure destination and filters. The sink and the
// destination join a.closers as soon as they exist, so that a later failure closes them.
func (a *App) newPipeline(i int, pc config.Pipeline, s shared) (*pipeline.Pipeline, error) {
	log := a.log.With(zap.String("pipeline", pc.Name))
	sink, err := sinks.Registry.New(pc.Sink.Type, pc.Sink.Config, sinks.Deps{
		Logger: log, AWS: s.aws, ReportBatchItemFailures: pc.ReportBatchItemFailures,
	})
	if err != nil {
		return nil, fmt.Errorf("pipelines[%d] (%s): sink: %w", i, pc.Name, err)
	}
	a.closers = append(a.closers, sink)
	var dest onfailure.Destination
	if pc.OnFailure != nil {
		if dest, err = onfailure.Registry.New(pc.OnFailure.Type, pc.OnFailure.Config, onfailure.Deps{Logger: log, AWS: s.aws}); err != nil {
			return nil, fmt.Errorf("pipelines[%d] (%s): on_failure: %w", i, pc.Name, err)
		}
		a.closers = append(a.closers, dest)
	}
	match, err := compileFilters(i, pc.Filters)
	if err != nil {
		return nil, err
	}
	return pipeline.New(pc, pipeline.Deps{
		Streams: s.streams, Tables: s.ddb, Store: a.store, Sink: sink, OnFailure: dest, Filter: match,
		WorkerID: s.workerID, LeaseDuration: a.cfg.Leases.LeaseDuration, RenewInterval: a.cfg.Leases.RenewInterval,
		Log: a.log, Hooks: a.hooksOf(pc.Name, s.metrics),
		Memory: s.memory, ShardMemory: int64(a.cfg.Memory.MaxBufferedBytesPerShard), Fleet: s.fleet, Pace: s.pace,
	})
}

// compileFilters compiles pipeline i's filter patterns; nil without filters (a nil filter.Set in the
// interface would not be a nil Matcher).
func compileFilters(i int, filters []config.Filter) (dispatch.Matcher, error) {
	var set filter.Set
	for j, f := range filters {
		pat, err := filter.Compile([]byte(f.Pattern))
		if err != nil {
			return nil, fmt.Errorf("pipelines[%d].filters[%d]: %w", i, j, err)
		}
		set = append(set, pat)
	}
	if len(set) == 0 {
		return nil, nil
	}
	return set, nil
}

// Status is this process's view of its pipelines, as /status serves it.
func (a *App) Status() Status { return a.status.status() }

// Addr is the address the HTTP server listens on (useful with a ":0" listen), "" without a server.
func (a *App) Addr() string {
	if a.server == nil {
		return ""
	}
	return a.server.Addr()
}

// Run runs every pipeline, and the HTTP server, until one of three things:
//   - stop is closed: a graceful stop. Readiness turns false, the pipelines finish the batches in
//     flight, checkpoint them and release their leases, and Run returns nil.
//   - ctx is done: a forced stop. Deliveries in flight are canceled (their records are delivered
//     again by the next owner of the shard) and Run returns nil or ctx's error; nil always when
//     stop was closed too (a drain cut short).
//   - something fails (the lease table has another key schema, say): Run stops the rest and
//     returns the error.
//
// Either way the sinks and destinations are closed before Run returns. Run is called once.
func (a *App) Run(ctx context.Context, stop <-chan struct{}) error {
	defer a.closeSinks(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	srvCtx, stopServer := context.WithCancel(gctx)
	defer stopServer()
	if a.server != nil {
		g.Go(func() error { return a.server.Run(srvCtx) })
		a.log.Info("serving /metrics, /healthz, /readyz, /status", zap.String("listen", a.server.Addr()))
	}
	g.Go(func() error {
		defer stopServer()
		return a.runPipelines(gctx, stop)
	})
	err := g.Wait()
	if err == nil || (errors.Is(err, context.Canceled) && wait.Closed(stop)) {
		a.log.Info("poller stopped")
		return nil
	}
	return err
}

// runPipelines waits for the lease table, then runs every pipeline until they all stop.
func (a *App) runPipelines(ctx context.Context, stop <-chan struct{}) error {
	if err := a.ensureTable(ctx, stop); err != nil {
		return err
	}
	a.health.started(len(a.pipelines))
	a.log.Info("poller started", zap.Int("pipelines", len(a.pipelines)), zap.String("lease_table", a.cfg.Leases.Table))
	pg, pctx := errgroup.WithContext(ctx)
	if len(a.pipelines) == 0 { // every pipeline is disabled: serve the endpoints until stopped
		pg.Go(func() error {
			select {
			case <-stop:
			case <-pctx.Done():
			}
			return nil
		})
	}
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
}

// ensureTableWait is the wait before retry number attempt of an unreachable lease table: a second
// more each time, up to 15 s.
func ensureTableWait(attempt int) time.Duration {
	return min(time.Duration(attempt)*time.Second, 15*time.Second)
}

// ensureTable checks (and, with create_table, creates) the lease table, retrying while it is
// unreachable: readiness stays false meanwhile. A stop while it waits returns nil: the pipelines then
// stop at once.
func (a *App) ensureTable(ctx context.Context, stop <-chan struct{}) error {
	err := wait.Retry(ctx, stop, ensureTableWait, func(attempt int) error {
		err := a.store.EnsureTable(ctx, a.cfg.Leases.CreateTable)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, checkpoint.ErrNoTable) || errors.Is(err, checkpoint.ErrTableSchema):
			// Waiting cannot fix these: the table is missing and create_table is false, or it has
			// another key schema (not a poller lease table).
			return wait.Permanent(fmt.Errorf("lease table %s: %w", a.cfg.Leases.Table, err))
		}
		a.ready.Set(false, "lease table unreachable: "+err.Error())
		a.log.Warn("lease table not ready; retrying", zap.String("table", a.cfg.Leases.Table), zap.Int("attempt", attempt), zap.Error(err))
		return err
	})
	if errors.Is(err, wait.ErrStopped) {
		return nil
	}
	return err
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

// hooksOf returns the hooks of the pipeline called name: its metrics, its health, its part of
// /status, and what WithHooks adds.
func (a *App) hooksOf(name string, m *metrics.Metrics) []hooks.Hook {
	return append(a.observersOf(name, m), a.health.pipeline(name))
}

// observersOf are the hooks of pipeline name but health's: all a disabled pipeline gets, since
// health would count a pipeline that never runs a lease round as wedged.
func (a *App) observersOf(name string, m *metrics.Metrics) []hooks.Hook {
	hs := []hooks.Hook{m.Pipeline(name), a.status.pipeline(name)}
	if a.extraHooks != nil {
		hs = append(hs, a.extraHooks(name)...)
	}
	return hs
}

// maxPollSlowdown bounds how far the process's pace stretches the poll waits while its lease
// renewals fall behind for want of CPU (pace.Governor): 32 x 250 ms is one call per idle shard every
// 8 s, the most any wait is stretched to (pace.MaxStretchedWait). Measured at 4,000 idle shards on
// 2 cores, 8x was not enough for the renewals to keep up. Past that bound the process holds more
// shards than it can read, and another replica (or more CPU) is the fix, not slower polling.
const maxPollSlowdown = 32
