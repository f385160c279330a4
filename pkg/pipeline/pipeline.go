// Package pipeline runs one configured pipeline: it discovers the stream's shards, holds their
// leases in the lease table, starts a shard worker for each shard it may read (parents before
// children), renews its leases, and on stop drains, checkpoints and releases them.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/config"
	"github.com/poller-dev/poller/internal/metrics"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// streamsAPI is the part of the DynamoDB Streams API a pipeline uses; *dynamodbstreams.Client
// satisfies it.
type streamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// leaseStore is the part of the lease table a pipeline uses; *checkpoint.Store satisfies it.
type leaseStore interface {
	List(ctx context.Context, pipeline string) ([]checkpoint.Lease, []checkpoint.Worker, error)
	Create(ctx context.Context, l checkpoint.Lease) (bool, error)
	Take(ctx context.Context, l checkpoint.Lease, owner string) (*checkpoint.Held, bool, error)
	Heartbeat(ctx context.Context, pipeline, workerID string) (int64, error)
}

// Pipeline is one running pipeline. Fields are set by New and immutable after Run starts.
type Pipeline struct {
	Name     string
	Config   config.Pipeline
	Streams  streamsAPI
	Tables   tableAPI
	Store    leaseStore
	Sink     sinks.Sink
	Filter   dispatch.Matcher // nil delivers everything
	WorkerID string
	// LeaseDuration and RenewInterval come from the leases config.
	LeaseDuration time.Duration
	RenewInterval time.Duration
	// RefreshInterval is how often the whole shard list is described again (children of a finished
	// shard are looked up at once regardless).
	RefreshInterval time.Duration
	Metrics         *metrics.Metrics
	Log             *zap.Logger

	policy        deliverer
	maxEventBytes int
}

// Deps are what a pipeline needs from outside.
type Deps struct {
	Streams       streamsAPI
	Tables        tableAPI
	Store         leaseStore
	Sink          sinks.Sink
	OnFailure     onfailure.Destination // nil: discarded batches are only logged and counted
	Filter        dispatch.Matcher
	WorkerID      string
	LeaseDuration time.Duration
	RenewInterval time.Duration
	Metrics       *metrics.Metrics
	Log           *zap.Logger
}

// lambdaMaxEventBytes is Lambda's synchronous invocation payload limit, the default event size cap.
const lambdaMaxEventBytes = 6 * 1024 * 1024

// New builds a pipeline from its config.
func New(cfg config.Pipeline, deps Deps) (*Pipeline, error) {
	if deps.Streams == nil || deps.Store == nil || deps.Sink == nil || deps.Metrics == nil {
		return nil, fmt.Errorf("pipeline %s: streams client, lease store, sink and metrics are required", cfg.Name)
	}
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("pipeline", cfg.Name))
	p := &Pipeline{
		Name: cfg.Name, Config: cfg, Streams: deps.Streams, Tables: deps.Tables, Store: deps.Store,
		Sink: deps.Sink, Filter: deps.Filter, WorkerID: deps.WorkerID,
		LeaseDuration: deps.LeaseDuration, RenewInterval: deps.RenewInterval, RefreshInterval: 10 * time.Second,
		Metrics: deps.Metrics, Log: log, maxEventBytes: lambdaMaxEventBytes,
	}
	if l, ok := deps.Sink.(interface{ MaxEventBytes() int }); ok && l.MaxEventBytes() > 0 {
		p.maxEventBytes = l.MaxEventBytes()
	}
	p.policy = p.newPolicy(deps)
	m := deps.Metrics
	// Make every series of the contract visible from the start, at zero.
	for _, r := range []string{"ok", "throttled", "error"} {
		m.GetRecords.WithLabelValues(cfg.Name, r)
	}
	for _, r := range []string{"max_age", "retries_exhausted"} {
		m.RecordsDropped.WithLabelValues(cfg.Name, r)
	}
	m.RecordsPolled.WithLabelValues(cfg.Name)
	m.RecordsFilteredOut.WithLabelValues(cfg.Name)
	m.RecordsDelivered.WithLabelValues(cfg.Name)
	m.BatchBisects.WithLabelValues(cfg.Name)
	m.LeaseTakeovers.WithLabelValues(cfg.Name)
	m.LeasesOwned.WithLabelValues(cfg.Name)
	return p, nil
}

// state is the loop's view of the stream and the lease table. Owned by Run's goroutine.
type state struct {
	stream    shards.Stream
	described time.Time
	leases    map[string]checkpoint.Lease
	firstRun  bool // the pipeline had no lease at all when this worker started
	running   map[string]*shardWorker
	tracker   *checkpoint.Tracker
	expired   map[string]bool // leases whose counter stood still for lease_duration, at the last List
}

// Run runs the pipeline until stop is closed (graceful: batches in flight finish and are
// checkpointed, leases are released, and Run returns nil) or ctx is canceled (at once).
func (p *Pipeline) Run(ctx context.Context, stop <-chan struct{}) error {
	arn, err := p.streamARN(ctx, stop)
	if errors.Is(err, errStoppedEarly) {
		return nil
	}
	if err != nil {
		return err
	}
	st := &state{
		stream:  shards.Stream{ARN: arn},
		leases:  map[string]checkpoint.Lease{},
		running: map[string]*shardWorker{},
		tracker: checkpoint.NewTracker(p.LeaseDuration),
	}
	// Workers report a finished shard here so that its children start at once.
	finished := make(chan string, 16)
	var wg sync.WaitGroup
	defer wg.Wait()

	first := true
	tick := time.NewTicker(p.RenewInterval)
	defer tick.Stop()
	for {
		if err := p.sync(ctx, st, first, finished, &wg); err != nil {
			p.Log.Warn("sync with the lease table and the stream failed; retrying at the next tick", zap.Error(err))
		}
		first = false
		select {
		case <-tick.C:
		case id := <-finished:
			p.startChildren(ctx, st, id)
		case <-stop:
			p.shutdown(ctx, st)
			return nil
		case <-ctx.Done():
			p.stopAll(st, true)
			return ctx.Err()
		}
	}
}

func (p *Pipeline) streamARN(ctx context.Context, stop <-chan struct{}) (string, error) {
	if p.Config.Source.StreamARN != "" {
		return p.Config.Source.StreamARN, nil
	}
	for attempt := 1; ; attempt++ {
		arn, err := resolveStream(ctx, p.Tables, p.Config.Source.Table)
		if err == nil {
			return arn, nil
		}
		if errors.Is(err, errNoStream) {
			return "", err
		}
		p.Log.Warn("resolving the table's stream failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		wait, cancel := context.WithTimeout(ctx, min(time.Duration(attempt)*time.Second, 15*time.Second))
		select {
		case <-wait.Done():
		case <-stop:
		}
		cancel()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if isClosed(stop) {
			return "", errStoppedEarly
		}
	}
}

// sync is one reconcile step: renew what is held, read the lease table, refresh the shard list when
// due, create leases for new shards, reap ended workers, and start workers for shards that are ready
// and free.
func (p *Pipeline) sync(ctx context.Context, st *state, first bool, finished chan<- string, wg *sync.WaitGroup) error {
	p.reap(st)
	p.renew(ctx, st)
	if _, err := p.Store.Heartbeat(ctx, p.Name, p.WorkerID); err != nil {
		p.Log.Debug("heartbeat failed", zap.Error(err))
	}
	leases, workers, err := p.Store.List(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	now := time.Now()
	st.leases = make(map[string]checkpoint.Lease, len(leases))
	for _, l := range leases {
		st.leases[l.ShardID] = l
	}
	view := st.tracker.Observe(now, leases, workers)
	st.expired = make(map[string]bool, len(view.Expired))
	for _, l := range view.Expired {
		st.expired[l.ShardID] = true
	}
	if first {
		st.firstRun = len(leases) == 0
	}
	if st.described.IsZero() || now.Sub(st.described) >= jitter(p.RefreshInterval) {
		desc, err := shards.Describe(ctx, p.Streams, st.stream.ARN)
		if err != nil {
			return err
		}
		st.stream, st.described = desc, now
		if err := p.createLeases(ctx, st, desc.Shards); err != nil {
			return err
		}
	}
	p.startReady(ctx, st, finished, wg)
	return nil
}

// createLeases adds a lease for every shard that has none. On the pipeline's very first run with
// starting_position LATEST, closed shards are created finished: LATEST means "from now on", so their
// old records are skipped. Shards found later always start at TRIM_HORIZON (a child must never skip
// records its parent's successor holds).
func (p *Pipeline) createLeases(ctx context.Context, st *state, list []shards.Shard) error {
	for _, s := range list {
		if _, ok := st.leases[s.ID]; ok {
			continue
		}
		l := checkpoint.Lease{Pipeline: p.Name, ShardID: s.ID, StreamARN: st.stream.ARN}
		if s.ParentID != "" {
			l.Parents = []string{s.ParentID}
		}
		if st.firstRun && p.Config.Source.StartingPosition == config.Latest {
			if s.Closed() {
				l.Finished = true
			} else {
				l.StartAt = string(config.Latest)
			}
		}
		created, err := p.Store.Create(ctx, l)
		if err != nil {
			return fmt.Errorf("create lease for shard %s: %w", s.ID, err)
		}
		if created {
			l.Counter = 1 // as Create writes it, so the lease can be taken in this same round
			st.leases[s.ID] = l
		}
	}
	return nil
}

// startChildren looks up a finished shard's children at once (ShardFilter CHILD_SHARDS) and
// starts them, rather than waiting for the next full refresh.
func (p *Pipeline) startChildren(ctx context.Context, st *state, parent string) {
	kids, err := shards.Children(ctx, p.Streams, st.stream.ARN, parent)
	if err != nil {
		p.Log.Warn("looking up a finished shard's children failed; the next refresh finds them", zap.String("shard_id", parent), zap.Error(err))
		return
	}
	known := map[string]bool{}
	for _, s := range st.stream.Shards {
		known[s.ID] = true
	}
	for _, k := range kids {
		if !known[k.ID] {
			st.stream.Shards = append(st.stream.Shards, k)
		}
	}
	if err := p.createLeases(ctx, st, kids); err != nil {
		p.Log.Warn("creating leases for children failed; the next sync retries", zap.Error(err))
	}
	if l, ok := st.leases[parent]; ok {
		l.Finished = true
		st.leases[parent] = l
	}
}

// shardList is the listed shards plus shards only the lease table still knows (an inconsistent or
// partial listing must not make the loop forget a shard it tracks).
func (st *state) shardList() []shards.Shard {
	list := append([]shards.Shard(nil), st.stream.Shards...)
	listed := make(map[string]bool, len(list))
	for _, s := range list {
		listed[s.ID] = true
	}
	for id, l := range st.leases {
		if listed[id] || l.Finished {
			continue
		}
		s := shards.Shard{ID: id}
		if len(l.Parents) > 0 {
			s.ParentID = l.Parents[0]
		}
		list = append(list, s)
	}
	return list
}

// startReady takes and starts every ready shard that is free, expired, or ours from an earlier run.
func (p *Pipeline) startReady(ctx context.Context, st *state, finished chan<- string, wg *sync.WaitGroup) {
	lin := shards.Lineage{
		Finished: func(id string) bool { return st.leases[id].Finished },
		Tracked:  func(id string) bool { _, ok := st.leases[id]; return ok },
	}
	for _, s := range lin.Ready(st.shardList()) {
		if _, ok := st.running[s.ID]; ok {
			continue
		}
		l, ok := st.leases[s.ID]
		if !ok {
			continue // another worker created it this round; taken at the next List, once its counter is known
		}
		if l.Owner != "" && l.Owner != p.WorkerID && !st.expired[s.ID] {
			continue
		}
		held, owned, err := p.Store.Take(ctx, l, p.WorkerID)
		if err != nil {
			p.Log.Warn("taking a lease failed", zap.String("shard_id", s.ID), zap.Error(err))
			continue
		}
		if !owned {
			continue // another worker was faster; the next List shows it
		}
		if l.Owner != "" && l.Owner != p.WorkerID {
			p.Metrics.LeaseTakeovers.WithLabelValues(p.Name).Inc()
			p.Log.Info("took over an expired lease", zap.String("shard_id", s.ID), zap.String("previous_owner", l.Owner))
		}
		p.start(ctx, st, s, l, held, finished, wg)
	}
	p.Metrics.LeasesOwned.WithLabelValues(p.Name).Set(float64(len(st.running)))
}

func (p *Pipeline) start(ctx context.Context, st *state, s shards.Shard, l checkpoint.Lease, held *checkpoint.Held, finished chan<- string, wg *sync.WaitGroup) {
	wctx, cancel := context.WithCancel(ctx)
	w := &shardWorker{id: s.ID, held: held, stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	st.running[s.ID] = w
	start := startPosition(l, p.Config.Source.StartingPosition)
	p.Log.Info("reading shard", zap.String("shard_id", s.ID), zap.Stringer("from", start))
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		p.runShard(wctx, w, start, l.Checkpoint, st.stream)
		if w.finished {
			select {
			case finished <- w.id:
			case <-ctx.Done():
			}
		}
	}()
}

// startPosition is where a shard's reading starts: after its checkpoint; else LATEST for a shard the
// very first run created at LATEST; else TRIM_HORIZON (every shard found later, children above all).
func startPosition(l checkpoint.Lease, _ config.StartingPosition) shards.Position {
	switch {
	case l.Checkpoint != "":
		return shards.After(l.Checkpoint)
	case l.StartAt == string(config.Latest):
		return shards.Latest
	default:
		return shards.TrimHorizon
	}
}

// renew renews every held lease; a worker whose lease was taken is stopped at once.
func (p *Pipeline) renew(ctx context.Context, st *state) {
	for id, w := range st.running {
		owned, err := w.held.Renew(ctx)
		if err != nil {
			p.Log.Warn("renewing a lease failed; retrying at the next tick", zap.String("shard_id", id), zap.Error(err))
			continue
		}
		if !owned {
			p.Log.Warn("lease lost to another worker; stopping the shard", zap.String("shard_id", id))
			w.cancel()
			<-w.done
			delete(st.running, id)
		}
	}
}

// reap forgets workers that ended; a worker that failed is started again by startReady if its
// lease is still ours.
func (p *Pipeline) reap(st *state) {
	for id, w := range st.running {
		select {
		case <-w.done:
		default:
			continue
		}
		delete(st.running, id)
		if w.err != nil && !errors.Is(w.err, context.Canceled) {
			p.Log.Warn("shard worker stopped", zap.String("shard_id", id), zap.Error(w.err))
		}
	}
}

// shutdown stops every worker gracefully, then releases their leases so that other workers take
// them at once rather than after lease_duration.
func (p *Pipeline) shutdown(ctx context.Context, st *state) {
	p.stopAll(st, false)
	for id, w := range st.running {
		if w.finished {
			continue
		}
		if _, err := w.held.Release(ctx); err != nil {
			p.Log.Warn("releasing a lease failed; it expires after lease_duration", zap.String("shard_id", id), zap.Error(err))
		}
	}
	p.Log.Info("pipeline stopped; leases released", zap.Int("leases", len(st.running)))
	st.running = map[string]*shardWorker{}
	p.Metrics.LeasesOwned.WithLabelValues(p.Name).Set(0)
}

// stopAll stops every worker in parallel and waits: gracefully (close stop) or at once (cancel).
func (p *Pipeline) stopAll(st *state, now bool) {
	for _, w := range st.running {
		if now {
			w.cancel()
		} else {
			close(w.stop)
		}
	}
	for _, w := range st.running {
		<-w.done
	}
}

var errStoppedEarly = errors.New("stopped before the stream was resolved")

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// jitter spreads d by ±10% so that replicas do not describe the stream in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
