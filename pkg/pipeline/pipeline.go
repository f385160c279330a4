// Package pipeline runs one configured pipeline: it discovers the stream's shards, holds its fair
// share of their leases in the lease table (shared with the other replicas; see plan), starts a shard
// worker for each shard it may read (parents before children), renews its leases, hands leases over
// when other replicas ask for them, and on stop drains, checkpoints and releases them.
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

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/membudget"
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
	DeleteWorker(ctx context.Context, w checkpoint.Worker) (bool, error)
	Want(ctx context.Context, l checkpoint.Lease, by string) (bool, error)
	Delete(ctx context.Context, l checkpoint.Lease) (bool, error)
	Decide(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
	TakeDecision(ctx context.Context, d checkpoint.Decision, owner string) (checkpoint.Decision, bool, error)
	RenewDecision(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
	DecisionDone(ctx context.Context, d checkpoint.Decision) (checkpoint.Decision, bool, error)
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
	Log             *zap.Logger

	hooks         *hooks.Set      // every observer of the pipeline (metrics, readiness), checked once
	policy        *failure.Policy // unfenced; each shard worker uses shardPolicy
	maxEventBytes int
	memory        *membudget.Budget // the process's, shared with the other pipelines
	shardMemory   int64             // each shard's cap within memory
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
	Log           *zap.Logger
	// Hooks are told what the pipeline does (see package hooks): metrics.Metrics.Pipeline for the
	// Prometheus metrics, the service's readiness (hooks.HookLeaseRound), a test's observer.
	Hooks []hooks.Hook
	// Memory is the process-wide byte budget every shard of every pipeline reads within, and
	// ShardMemory each shard's cap in it; nil or 0: a budget of the config's defaults, for this
	// pipeline alone.
	Memory      *membudget.Budget
	ShardMemory int64
}

// lambdaMaxEventBytes is Lambda's synchronous invocation payload limit, the default event size cap.
const lambdaMaxEventBytes = 6 * 1024 * 1024

// New builds a pipeline from its config.
func New(cfg config.Pipeline, deps Deps) (*Pipeline, error) {
	if deps.Streams == nil || deps.Store == nil || deps.Sink == nil {
		return nil, fmt.Errorf("pipeline %s: streams client, lease store and sink are required", cfg.Name)
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
		Log: log, maxEventBytes: lambdaMaxEventBytes, hooks: hooks.New(deps.Hooks...),
	}
	p.memory, p.shardMemory = deps.Memory, deps.ShardMemory
	if def := config.Default().Memory; p.memory == nil || p.shardMemory <= 0 {
		p.memory, p.shardMemory = membudget.New(int64(def.MaxBufferedBytes)), int64(def.MaxBufferedBytesPerShard)
	}
	if l, ok := deps.Sink.(interface{ MaxEventBytes() int }); ok && l.MaxEventBytes() > 0 {
		p.maxEventBytes = l.MaxEventBytes()
	}
	p.policy = p.newPolicy(deps)
	return p, nil
}

// renewConcurrency bounds the renewals in flight at once: a worker's leases are renewed in parallel,
// so that a round stays well under renew_interval with many leases.
const renewConcurrency = 8

// state is the loop's view of the stream and the lease table. Owned by Run's goroutine; the channels
// and wg are shared with the shard workers' goroutines.
type state struct {
	stream    shards.Stream
	described time.Time
	// all are the pipeline's leases as last listed; leases those of the stream being read, by shard.
	all    []checkpoint.Lease
	leases map[string]checkpoint.Lease
	// decided: the fleet's first-run decision is done (see decide); until then this worker creates
	// no lease unless it is the decider. decision is the decision item as last seen while waiting,
	// and decisionSeen when it was first seen so (monotonic), to take over from a stalled decider.
	decided      bool
	decision     checkpoint.Decision
	decisionSeen time.Time
	// live are the workers counted live at the last List, this worker included: a lease is handed
	// over only to one of them (else released).
	live    map[string]bool
	running map[string]*shardWorker
	fences  map[string]*fence
	// handoffs are running shards draining for a handoff: shard ID -> the worker that asked.
	handoffs map[string]string
	// wants are the shards this worker asked for (Store.Want), and when, on the monotonic clock.
	wants   map[string]time.Time
	tracker *checkpoint.Tracker
	// heartbeat is the counter of this worker's last heartbeat, for removing its item on a clean stop.
	heartbeat int64
	// hashKey is the table's partition key attribute, "" until learnt (see learnHashKey).
	hashKey string

	finished chan string   // a shard worker read its shard to the end: start its children at once
	ended    chan struct{} // a shard worker ended: reap it (and hand its lease over) at once
	stop     <-chan struct{}
	wg       sync.WaitGroup
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
		stream:   shards.Stream{ARN: arn},
		leases:   map[string]checkpoint.Lease{},
		running:  map[string]*shardWorker{},
		fences:   map[string]*fence{},
		handoffs: map[string]string{},
		wants:    map[string]time.Time{},
		tracker:  checkpoint.NewTracker(p.LeaseDuration),
		finished: make(chan string, 16),
		ended:    make(chan struct{}, 1),
		stop:     stop,
	}
	defer st.wg.Wait()

	syncNow := true
	tick := time.NewTicker(p.RenewInterval)
	defer tick.Stop()
	// expiry fires when a lease may have expired, between ticks: a dead owner's leases are taken as
	// soon as they may be, not up to a renew_interval later.
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	defer expiry.Stop()
	for {
		if syncNow {
			err := p.sync(ctx, st)
			if err != nil {
				p.Log.Warn("sync with the lease table failed; retrying at the next tick", zap.Error(err))
			}
			p.hooks.OnLeaseRound(err)
			if at := st.tracker.NextExpiry(); !at.IsZero() {
				expiry.Reset(time.Until(at))
			} else {
				expiry.Stop()
			}
		}
		syncNow = true
		select {
		case <-tick.C:
		case <-expiry.C:
		case id := <-st.finished:
			p.startChildren(ctx, st, id)
		case <-st.ended:
			p.reap(ctx, st)
			syncNow = false
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

// sync is one reconcile step: reap ended workers, renew what is held, heartbeat, read the lease
// table, remove dead workers' items, refresh the shard list when due (creating leases for new shards
// and deleting finished leases past retention), and balance: hand over, resume, take, ask, steal.
func (p *Pipeline) sync(ctx context.Context, st *state) error {
	p.reap(ctx, st)
	p.renew(ctx, st)
	if c, err := p.Store.Heartbeat(ctx, p.Name, p.WorkerID); err != nil {
		// Other replicas count a worker whose heartbeat stands still as dead and share out its
		// leases' future; say so at once.
		p.Log.Warn("heartbeat failed; other replicas may count this worker as gone", zap.Error(err))
	} else {
		st.heartbeat = c
	}
	leases, workers, err := p.Store.List(ctx, p.Name)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	now := time.Now()
	st.all, st.leases = leases, streamLeases(leases, st.stream.ARN)
	for _, l := range st.leases {
		if f, ok := st.fences[l.ShardID]; ok {
			// A request lets its worker take the lease while this one still renews, and a lease
			// listed as another's is lost: either way the shard's sink calls now need a renewal
			// of their own (see fence).
			f.contest(l.Owner != p.WorkerID || asked(l, p.WorkerID))
		}
	}
	view := st.tracker.Observe(now, leases, workers)
	expired := make(map[string]bool, len(view.Expired))
	for _, l := range view.Expired {
		expired[l.ShardID] = true
	}
	p.forgetDead(ctx, view.Dead)
	if st.described.IsZero() || !st.decided || now.Sub(st.described) >= jitter(p.RefreshInterval) {
		p.refresh(ctx, st, leases, now)
	}
	live := make([]string, len(view.Live))
	st.live = map[string]bool{p.WorkerID: true}
	for i, w := range view.Live {
		live[i] = w.ID
		st.live[w.ID] = true
	}
	p.balance(ctx, st, now, expired, live)
	return nil
}

// refresh describes the stream and creates leases for new shards. A failure is logged and the
// round goes on with the listing it had, so that renewals, failover and handoffs do not wait on
// DescribeStream (throttled, say, by its account-wide limit); it is retried at the next refresh, or
// at the next tick while the stream was never described.
func (p *Pipeline) refresh(ctx context.Context, st *state, leases []checkpoint.Lease, now time.Time) {
	p.follow(ctx, st)
	desc, err := shards.Describe(ctx, p.Streams, st.stream.ARN)
	p.learnHashKey(ctx, st, desc.HashKey)
	if err != nil {
		p.Log.Warn("describing the stream failed; going on with the last listing", zap.Error(err))
		if !st.described.IsZero() {
			st.described = now
		}
		return
	}
	st.stream, st.described = desc, now
	if !st.decided {
		// The first run's leases are created by the one worker deciding it, with starting_position
		// applied; the others wait for it. Until then, refresh at every tick.
		if err := p.decide(ctx, st, leases, now); err != nil {
			p.Log.Warn("deciding the pipeline's first start failed; retrying at the next tick", zap.Error(err))
		}
		if !st.decided {
			return
		}
	}
	// Every shard found after the first run's decision (children above all) starts at TRIM_HORIZON.
	if err := p.createLeases(ctx, st, desc.Shards, nil, nil); err != nil {
		p.Log.Warn("creating leases for new shards failed; retrying at the next refresh", zap.Error(err))
		st.described = time.Time{} // retry at the next tick: new shards must not wait 10 s for a lease
		return
	}
	p.deleteFinished(ctx, st, leases)
}

// decisionRenewEvery is how many lease creations the first run's decider makes between renewals of
// its decision item, so that a long listing does not look like a stalled decider.
const decisionRenewEvery = 50

// createLeases adds a lease for every shard of list that has none: as starts says for the first
// run's decision, else at TRIM_HORIZON. renew, if set, is called every decisionRenewEvery creations.
func (p *Pipeline) createLeases(ctx context.Context, st *state, list []shards.Shard, starts map[string]firstStart, renew func() error) error {
	n := 0
	for _, s := range list {
		if _, ok := st.leases[s.ID]; ok {
			continue
		}
		l := checkpoint.Lease{Pipeline: p.Name, ShardID: s.ID, StreamARN: st.stream.ARN}
		if s.ParentID != "" {
			l.Parents = []string{s.ParentID}
		}
		if fs, ok := starts[s.ID]; ok {
			l.StartAt, l.Finished = fs.StartAt, fs.Finished
		}
		if n++; renew != nil && n%decisionRenewEvery == 0 {
			if err := renew(); err != nil {
				return err
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
// creates their leases, rather than waiting for the next full refresh; the sync that follows
// starts them.
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
	if err := p.createLeases(ctx, st, kids, nil, nil); err != nil {
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

// start runs a shard worker for a lease just taken at takenAt.
func (p *Pipeline) start(ctx context.Context, st *state, held *checkpoint.Held, takenAt time.Time) {
	l := held.Lease()
	wctx, cancel := context.WithCancel(ctx)
	w := &shardWorker{id: l.ShardID, held: held, stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	f := newFence(held, cancel, p.fenceTrust(), p.RenewInterval/2, time.Now)
	f.confirm(takenAt)
	w.deliver = p.shardPolicy(f).Deliver
	st.running[w.id], st.fences[w.id] = w, f
	start := startOf(l)
	p.Log.Info("reading shard", zap.String("shard_id", w.id), zap.Stringer("from", start.Pos), zap.Bool("resolving_latest", start.Resolve))
	stream := st.stream
	stream.HashKey = st.hashKey
	if stream.HashKey == "" && p.Config.ParallelizationFactor > 1 {
		p.Log.Warn("the table's key schema is not known yet: this shard is read with one lane (every key in order) until its worker restarts",
			zap.String("shard_id", w.id))
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer cancel()
		p.runShard(wctx, w, start, l.Checkpoint, stream)
		if w.finished {
			select {
			case st.finished <- w.id:
			case <-st.stop: // the loop is shutting down and no longer starts children
			case <-ctx.Done():
			}
		}
		select {
		case st.ended <- struct{}{}:
		default: // the loop has a wake-up pending already
		}
	}()
}

// asked reports whether another worker asked for l (wanted_by).
func asked(l checkpoint.Lease, me string) bool { return l.WantedBy != "" && l.WantedBy != me }

// fenceTrust is how long a confirmed lease nobody asked for is trusted before a sink call without
// renewing it first.
func (p *Pipeline) fenceTrust() time.Duration {
	if d := p.LeaseDuration - p.RenewInterval; d > 0 {
		return d
	}
	return p.LeaseDuration / 2
}

// reap forgets workers that ended and hands over the leases drained for a handoff; a worker that
// failed is started again by balance if its lease is still ours.
func (p *Pipeline) reap(ctx context.Context, st *state) {
	for id, w := range st.running {
		select {
		case <-w.done:
		default:
			continue
		}
		to, handing := st.handoffs[id]
		p.forget(st, id)
		if w.err != nil && !errors.Is(w.err, context.Canceled) {
			p.Log.Warn("shard worker stopped", zap.String("shard_id", id), zap.Error(w.err))
		}
		if !handing || w.finished {
			continue
		}
		p.leaveIdle(ctx, w)
		ok, err := p.handOver(ctx, st, w.held, to)
		switch {
		case err != nil:
			p.Log.Warn("handing a lease over failed; it is resumed and handed over again", zap.String("shard_id", id), zap.String("to", to), zap.Error(err))
		case ok:
			p.Log.Info("handed a lease over", zap.String("shard_id", id), zap.String("to", to),
				zap.String("checkpoint", w.held.Lease().Checkpoint))
		default:
			p.Log.Warn("lease lost to another worker before its handoff", zap.String("shard_id", id))
		}
	}
	p.hooks.OnLeasesOwned(len(st.running))
}

// handOver gives a drained lease to the worker that asked for it if that worker is still live, and
// releases it otherwise (see successor).
func (p *Pipeline) handOver(ctx context.Context, st *state, held *checkpoint.Held, to string) (bool, error) {
	if successor(to, st.live) == "" {
		p.Log.Info("the worker that asked for a lease is gone; releasing it instead of handing it over",
			zap.String("shard_id", held.Lease().ShardID), zap.String("asked_by", to))
		return held.Release(ctx)
	}
	return held.Handoff(ctx, to)
}

// successor is who a drained lease goes to: the worker that asked for it, when it was counted live
// at the last List (its heartbeat moved within lease_duration, its item was not removed by a clean
// stop); else nobody ("": release the lease). A lease handed to a dead worker would stand idle
// until it expired, lease_duration later; a released one is taken by any worker at its next List.
func successor(requester string, live map[string]bool) string {
	if requester != "" && live[requester] {
		return requester
	}
	return ""
}

func (p *Pipeline) forget(st *state, id string) {
	delete(st.running, id)
	delete(st.fences, id)
	delete(st.handoffs, id)
}

// shutdown stops every worker gracefully, then releases their leases (or hands over the ones asked
// for) so that other workers take them at once rather than after lease_duration, and removes this
// worker's heartbeat item so that the others count one worker less at once.
func (p *Pipeline) shutdown(ctx context.Context, st *state) {
	// Keep renewing while the batches in flight finish: a slow sink must not let the leases expire
	// under the drain (another worker would then deliver the same batches again).
	drained := make(chan struct{})
	var renewing sync.WaitGroup
	renewing.Go(func() { p.renewUntil(ctx, st, drained) })
	p.stopAll(st, false)
	close(drained)
	renewing.Wait()
	for id, w := range st.running {
		if w.finished {
			continue
		}
		p.leaveIdle(ctx, w)
		var err error
		if to, ok := st.handoffs[id]; ok {
			_, err = p.handOver(ctx, st, w.held, to)
		} else {
			_, err = w.held.Release(ctx)
		}
		if err != nil {
			p.Log.Warn("releasing a lease failed; it expires after lease_duration", zap.String("shard_id", id), zap.Error(err))
		}
	}
	if st.heartbeat > 0 {
		if _, err := p.Store.DeleteWorker(ctx, checkpoint.Worker{Pipeline: p.Name, ID: p.WorkerID, Counter: st.heartbeat}); err != nil {
			p.Log.Warn("removing this worker's item failed; others count it until it expires", zap.Error(err))
		}
	}
	p.Log.Info("pipeline stopped; leases released", zap.Int("leases", len(st.running)))
	st.running = map[string]*shardWorker{}
	p.hooks.OnLeasesOwned(0)
}

// stopAll stops every worker in parallel and waits: gracefully (close stop) or at once (cancel).
func (p *Pipeline) stopAll(st *state, now bool) {
	for id, w := range st.running {
		if now {
			w.cancel()
		} else if _, draining := st.handoffs[id]; !draining { // a draining worker's stop is closed already
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
