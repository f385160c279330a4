package checkpoint

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// LeaseTable is the part of the lease table a Coordinator uses; *Store satisfies it.
type LeaseTable interface {
	List(ctx context.Context, pipeline string) ([]Lease, []Worker, error)
	Take(ctx context.Context, l Lease, owner string) (*Held, bool, error)
	Want(ctx context.Context, l Lease, by string) (bool, error)
	Beat(ctx context.Context, pipeline, workerID string, prev Beat) (Beat, bool, error)
	DeleteWorker(ctx context.Context, w Worker) (bool, error)
}

var _ LeaseTable = (*Store)(nil)

// Hooks are told what a Coordinator does; *hooks.Set satisfies it, and nil tells nobody.
type Hooks interface {
	// OnLeasesOwned is told how many leases this worker holds, whenever that may change.
	OnLeasesOwned(n int)
	// OnLeaseTakeover is told that this worker took a lease from another worker (expired, stolen, or
	// handed over on request).
	OnLeaseTakeover(shardID string)
	// OnLeaseRound is told each round's outcome: List's error, or nil once Balance is done.
	OnLeaseRound(err error)
}

type noHooks struct{}

func (noHooks) OnLeasesOwned(int)      {}
func (noHooks) OnLeaseTakeover(string) {}
func (noHooks) OnLeaseRound(error)     {}

// CoordinatorConfig is what a Coordinator is built from.
type CoordinatorConfig struct {
	// Store is the lease table.
	Store LeaseTable
	// Pipeline is the pipeline whose leases are coordinated; WorkerID is this worker, unique among the
	// pipeline's replicas.
	Pipeline, WorkerID string
	// LeaseDuration (> 0) is how long a lease's counter must stand still before another worker may
	// take it; RenewInterval (> 0, well below LeaseDuration) is how often the pipeline runs a round.
	LeaseDuration, RenewInterval time.Duration
	// Clock is the monotonic clock leases are judged and fences timed on; nil: time.Now.
	Clock func() time.Time
	// Hooks are told what the coordinator does; nil: nobody.
	Hooks Hooks
	// Log is the pipeline's logger; nil: no logs.
	Log *zap.Logger
	// Fleet is the process's view shared by the coordinators of all its pipelines, so that the fair
	// share is one over all of them; nil: a Fleet of this pipeline alone.
	Fleet *Fleet
	// Pace is told how each renewal round went, to slow the process's readers down while rounds
	// fall behind; nil: nobody.
	Pace Pace
}

// Coordinator is one worker's part in coordinating one pipeline's leases with the other replicas,
// through the lease table alone. Its one job is to tell the pipeline which shards to start, stop or
// hand over; the pipeline discovers the shards, creates and deletes their leases, and runs a shard
// worker for each lease it is granted.
//
// The pipeline runs a round every renew_interval (and when a lease may have expired, NextExpiry):
//
//  1. Ended, with the shard workers that ended since: a lease drained for a handoff is handed over.
//  2. Renew: every lease held that no write confirmed for about a third of a lease_duration (a
//     checkpoint counts; see renewAge) is renewed; the shards whose lease was lost are returned, to
//     stop at once. How the round went is told to the process's Pace.
//  3. List: heartbeat, list the lease table and judge it (Tracker). The pipeline then refreshes its
//     view of the stream from the listing.
//  4. Balance, with the leases of the stream being read and their shards that are ready: hand over
//     what live workers asked for (Moves.Drain), resume, take, ask for and steal leases up to the
//     fair share (Moves.Start).
//
// On a graceful stop the pipeline keeps the leases renewed while its workers drain (RenewUntil), then
// calls Leave. A Coordinator is not safe for concurrent use: one per pipeline run, owned by the
// pipeline's loop, except that RenewUntil runs beside a loop that waits for its workers.
type Coordinator struct {
	store         LeaseTable
	pipeline, me  string
	leaseDuration time.Duration
	renewInterval time.Duration
	now           func() time.Time
	hooks         Hooks
	log           *zap.Logger
	fleet         *Fleet
	pacer         Pace

	tracker *Tracker
	// running are the leases this worker holds, each run by a shard worker of the pipeline.
	running map[string]*running
	// wants are the shards this worker asked for (Store.Want), and when, on the monotonic clock.
	wants map[string]time.Time
	// live are the workers counted live at the last List, this worker included: a lease is handed
	// over only to one of them (else released). expired are the leases judged expired then.
	live, expired map[string]bool
	// ownerBeats are the expired leases' owners' heartbeat counters to take them over with
	// (Lease.OwnerBeat), for the owners that vouch for their leases.
	ownerBeats map[string]int64
	// listedAt is when the last List was taken.
	listedAt time.Time
	// beat is this worker's last heartbeat: the next is written after it (Store.Beat), and its
	// counter removes the item on Leave. Written by heartbeat only (see beating).
	beat Beat
	// beatSent is when the last heartbeat that succeeded was sent; written by heartbeat only.
	beatSent time.Time
	// beating: StartHeartbeats runs the heartbeats on their own goroutine, and List does not beat.
	beating atomic.Bool
	// vouching: every worker item of the last List vouches for its leases (ProtocolVouch), so this
	// worker's clean heartbeats keep its leases too, and a lease needs no renewal of its own. A worker
	// of an older version, which judges a lease by its counter alone, turns it off.
	vouching atomic.Bool
	// held is the leases held as of the end of the last Renew, List, Ended, Balance or Leave: what a
	// heartbeat vouches for, read by the heartbeat goroutine (running is the loop's alone).
	held atomic.Pointer[[]*running]
	// renewBehind is the last Renew's verdict, and roundsBehind says the last List came over half a
	// lease_duration after the one before: for the heartbeat goroutine's report to the Pace.
	renewBehind, roundsBehind atomic.Bool
	// paused: the pipeline is paused (SetPaused); Balance moves nothing, and leases whose workers
	// ended are kept (idle) and renewed.
	paused bool
}

// running is a lease held and run.
type running struct {
	held  *Held
	fence *Fence
	// to is the worker the lease is handed over to once its shard worker drained; "" while it is not
	// draining for a handoff.
	to string
	// idle: the lease is kept while the pipeline is paused, with no shard worker; renewed as any
	// other, and run again by the first Balance after resume.
	idle bool
}

// NewCoordinator returns the coordinator of one run of a pipeline on this worker.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	c := &Coordinator{
		store: cfg.Store, pipeline: cfg.Pipeline, me: cfg.WorkerID,
		leaseDuration: cfg.LeaseDuration, renewInterval: cfg.RenewInterval,
		now: cfg.Clock, hooks: cfg.Hooks, log: cfg.Log, fleet: cfg.Fleet, pacer: cfg.Pace,
		tracker: NewTracker(cfg.LeaseDuration),
		running: map[string]*running{}, wants: map[string]time.Time{},
		live: map[string]bool{cfg.WorkerID: true}, expired: map[string]bool{}, ownerBeats: map[string]int64{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.hooks == nil {
		c.hooks = noHooks{}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.fleet == nil {
		c.fleet = NewFleet()
	}
	c.fleet.join(c.pipeline)
	return c
}

// Grant is a lease this worker took: run its shard. The shard worker writes its checkpoints through
// Held, and passes every call to the outside (sink, on_failure) through Fence first.
type Grant struct {
	Held  *Held
	Fence *Fence
}

// Listing is the lease table as a round's List saw it.
type Listing struct {
	// Leases are every lease of the pipeline, of every stream.
	Leases []Lease
	// At is when the table was listed, on the coordinator's clock.
	At time.Time
}

// Scope is what Balance shares out: Leases, the leases of the stream being read (as listed, with the
// ones the pipeline created or deleted since), and Ready, their shards that may be read now
// (unfinished, parents finished: shards.Lineage).
type Scope struct {
	Leases []Lease
	Ready  map[string]bool
}

// Moves are what a round asks of the pipeline.
type Moves struct {
	// Drain are running shards another live worker asked for: stop their workers gracefully (the
	// batches in flight finish and are checkpointed), then report them with Ended, which hands their
	// lease over.
	Drain []string
	// Start are the leases taken this round: start a shard worker for each.
	Start []Grant
}

// Ended is a shard worker that ended.
type Ended struct {
	ShardID string
	// Finished: the shard was read and delivered to its end, and its lease marked finished.
	Finished bool
	// IdleIterator is the shard's iterator when its LATEST lease had no record delivered yet ("" once
	// one was): stored in the lease before it is released or handed over, so that the next holder
	// reads on from exactly there.
	IdleIterator string
}

// Draining says whether shardID's worker was told to drain for a handoff (Moves.Drain).
func (c *Coordinator) Draining(shardID string) bool {
	r, ok := c.running[shardID]
	return ok && r.to != ""
}

// NextExpiry is when the first lease of the last List that is owned, unfinished and not expired yet
// expires if its counter stands still (Tracker.NextExpiry): the time to run a round, so that a dead
// owner's leases are taken as soon as they may be. Zero when there is none.
func (c *Coordinator) NextExpiry() time.Time { return c.tracker.NextExpiry() }

// List runs the round's reads: it heartbeats (vouching for the leases held, see beat), lists the
// pipeline's leases and workers, judges them on this worker's clock (Tracker), marks the fences of the
// leases asked for by others (or taken) as contested, and removes the items of dead workers. A failed
// List is the round's error (told to Hooks.OnLeaseRound): the round ends there, and is run again at
// the next tick.
func (c *Coordinator) List(ctx context.Context) (Listing, error) {
	if !c.beating.Load() {
		c.heartbeat(ctx)
	}
	leases, workers, err := c.store.List(ctx, c.pipeline)
	if err != nil {
		err = fmt.Errorf("list leases: %w", err)
		c.hooks.OnLeaseRound(err)
		return Listing{}, err
	}
	now := c.now()
	// Rounds that come late (the process short of CPU for thousands of shards) are behind as renewals
	// are: the takes, requests and handoffs of the fleet wait for them.
	c.roundsBehind.Store(!c.listedAt.IsZero() && now.Sub(c.listedAt) > c.leaseDuration/2)
	c.listedAt = now
	for _, l := range leases {
		if r, ok := c.running[l.ShardID]; ok {
			// A request lets its worker take the lease while this one still renews, and a lease
			// listed as another's is lost: either way the shard's calls now need a renewal of their
			// own (see Fence).
			r.fence.Contest(l.Owner != c.me || asked(l, c.me))
		}
	}
	view := c.tracker.Observe(now, leases, workers)
	c.expired = make(map[string]bool, len(view.Expired))
	c.ownerBeats = map[string]int64{}
	for _, l := range view.Expired {
		c.expired[l.ShardID] = true
		if l.OwnerBeat > 0 {
			c.ownerBeats[l.ShardID] = l.OwnerBeat
		}
	}
	c.forgetDead(ctx, view.Dead, leases)
	c.live = map[string]bool{c.me: true}
	for _, w := range view.Live {
		c.live[w.ID] = true
	}
	vouching := true
	for _, w := range workers {
		vouching = vouching && w.Vouches()
	}
	c.vouching.Store(vouching)
	return Listing{Leases: leases, At: now}, nil
}

// asked reports whether another worker asked for l (wanted_by).
func asked(l Lease, me string) bool { return l.WantedBy != "" && l.WantedBy != me }

// forgetDead removes the items of workers whose heartbeat stood still for lease_duration, so that
// the fair share is computed over live workers only. Any worker may do it; the write is conditional
// on the counter it saw, so a worker that heartbeats again meanwhile keeps its item. The item of a
// worker that still owns an unfinished lease of leases stays until its leases were taken: a take over
// its heartbeat is conditional on that item (Store.Take).
func (c *Coordinator) forgetDead(ctx context.Context, dead []Worker, leases []Lease) {
	owners := map[string]bool{}
	for _, l := range leases {
		if !l.Finished && l.Owner != "" {
			owners[l.Owner] = true
		}
	}
	for _, w := range dead {
		if w.ID == c.me || owners[w.ID] {
			continue
		}
		if ok, err := c.store.DeleteWorker(ctx, w); err != nil {
			c.log.Debug("removing a dead worker's item failed; retrying next round", zap.String("dead_worker", w.ID), zap.Error(err))
		} else if ok {
			c.log.Info("removed the item of a dead worker", zap.String("dead_worker", w.ID))
		}
	}
}

// Ended hands over the leases of workers that drained for a handoff (or releases them, when the
// worker that asked is gone: see successor) and forgets the ended workers' leases. A lease whose
// worker ended otherwise (it failed) stays this worker's: the next Balance resumes it.
func (c *Coordinator) Ended(ctx context.Context, ended []Ended) {
	var handing []handoffOf
	for _, e := range ended {
		r, ok := c.running[e.ShardID]
		if !ok {
			continue
		}
		if c.paused && !e.Finished && r.held.Owned() {
			// Paused: the lease stays this worker's, renewed, with no worker and no handoff.
			r.to, r.idle = "", true
			c.leaveIdle(ctx, r.held, e.IdleIterator)
			continue
		}
		delete(c.running, e.ShardID)
		if r.to == "" || e.Finished {
			continue
		}
		handing = append(handing, handoffOf{e, r})
	}
	// In parallel: a round may hand over a hundred leases or more (a newcomer asks for up to an
	// eighth of its fair share), and one after the other they would outlast the request.
	eachLimited(ctx, len(handing), func(int) bool { return true }, func(i int) {
		c.handOverEnded(ctx, handing[i].e, handing[i].r)
	})
	c.publish()
	c.hooks.OnLeasesOwned(len(c.running))
}

// handoffOf is a lease whose shard worker drained for a handoff.
type handoffOf struct {
	e Ended
	r *running
}

// handOverEnded hands r over to the worker that asked for it (see handOver), after storing a LATEST
// shard's idle iterator in it. Safe to run in parallel for different leases.
func (c *Coordinator) handOverEnded(ctx context.Context, e Ended, r *running) {
	c.leaveIdle(ctx, r.held, e.IdleIterator)
	ok, err := c.handOver(ctx, r.held, r.to)
	switch {
	case err != nil:
		c.log.Warn("handing a lease over failed; it is resumed and handed over again", zap.String("shard_id", e.ShardID), zap.String("to", r.to), zap.Error(err))
	case ok:
		c.log.Info("handed a lease over", zap.String("shard_id", e.ShardID), zap.String("to", r.to),
			zap.String("checkpoint", r.held.Lease().Checkpoint))
	default:
		c.log.Warn("lease lost to another worker before its handoff", zap.String("shard_id", e.ShardID))
	}
}

// Leave ends this worker's part after a graceful stop, once every shard worker ended: it releases
// each lease (hands over the ones asked for), in parallel, so that other workers take them at once rather than
// after lease_duration, and removes this worker's heartbeat item, so that the others count one
// worker less at once.
func (c *Coordinator) Leave(ctx context.Context, ended []Ended) {
	for id, r := range c.running {
		if r.idle {
			ended = append(ended, Ended{ShardID: id})
		}
	}
	c.leaveAll(ctx, ended)
	if c.beat.Counter > 0 {
		if _, err := c.store.DeleteWorker(ctx, Worker{Pipeline: c.pipeline, ID: c.me, Counter: c.beat.Counter}); err != nil {
			c.log.Warn("removing this worker's item failed; others count it until it expires", zap.Error(err))
		}
	}
	c.running = map[string]*running{}
	c.fleet.forget(c.pipeline)
	c.publish()
	c.hooks.OnLeasesOwned(0)
}

// handOver gives a drained lease to the worker that asked for it if that worker is still live, and
// releases it otherwise (see successor).
func (c *Coordinator) handOver(ctx context.Context, held *Held, to string) (bool, error) {
	if successor(to, c.live) == "" {
		c.log.Info("the worker that asked for a lease is gone; releasing it instead of handing it over",
			zap.String("shard_id", held.shardID), zap.String("asked_by", to))
		return held.Release(ctx)
	}
	return held.Handoff(ctx, to)
}

// leaveIdle stores, before a LATEST lease whose shard had no record yet is released or handed over,
// the shard worker's last iterator in it: the next holder reads on from there, exactly, rather than
// from the horizon skipping by creation time. A failure is logged: the time-based start remains.
func (c *Coordinator) leaveIdle(ctx context.Context, held *Held, iter string) {
	if iter == "" {
		return
	}
	if _, err := held.PinIterator(ctx, iter); err != nil {
		c.log.Warn("storing an idle LATEST shard's iterator failed; the next holder starts by creation time",
			zap.String("shard_id", held.shardID), zap.Error(err))
	}
}
