package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/wait"
)

// Where a pipeline and each of its shards start. Two decisions, each taken once and stored before
// anything depends on it:
//
//   - The first run's decision (which shards start at LATEST, which are skipped) is taken by one
//     worker for the whole fleet: the one whose conditional write created the pipeline's decision
//     item. Until it marks the decision done, no other worker creates a lease.
//   - A LATEST lease's position is resolved once, by the first worker that reads it, and pinned in
//     the lease with a fenced write before anything read from there is delivered.

// latestSkew is how far before a LATEST lease's start_time the records are still delivered when an
// idle shard is read again from TRIM_HORIZON (no record was read through the LATEST iterator before
// a restart): ApproximateCreationDateTime is rounded down (to the second by DynamoDB, to the minute by
// DynamoDB Local) and the poller's clock may differ from DynamoDB's. A record created after the
// LATEST iterator was asked for is never skipped; one created up to this long before it may be
// delivered.
const latestSkew = 2 * time.Minute

// decide takes part in the fleet's first-run decision until it is done; st.decided says whether it
// is. The worker that creates the decision item (or takes it over from a decider whose item stood
// still for lease_duration, on this worker's monotonic clock) creates the leases of its listing
// with the first-run rule (firstRunStarts), then marks the decision done; the others create no lease
// meanwhile. A pipeline whose leases predate decision items is recorded as decided.
func (p *Pipeline) decide(ctx context.Context, st *state, leases []checkpoint.Lease, now time.Time) error {
	d := checkpoint.Decision{Pipeline: p.Name, Position: string(p.Config.Source.StartingPosition), Owner: p.WorkerID}
	if p.Config.Source.StartingPosition == config.AtTimestamp {
		d.Time = p.Config.Source.StartingPositionTimestamp.Time
	}
	if len(leases) > 0 {
		d.Owner, d.Done = "", true
	}
	got, created, err := p.Store.Decide(ctx, d)
	if err != nil {
		return err
	}
	switch {
	case got.Done:
		st.decided = true
		return nil
	case created:
		p.Log.Info("deciding the pipeline's first start for the fleet", zap.String("starting_position", got.Position))
	case got.Owner == p.WorkerID:
		// This worker's own decision, left unfinished by a failed round: go on with it.
	case got.Counter != st.decision.Counter || got.Owner != st.decision.Owner:
		st.decision, st.decisionSeen = got, now
		p.Log.Info("waiting for another worker's decision of the pipeline's first start", zap.String("decider", got.Owner))
		return nil
	case now.Sub(st.decisionSeen) < p.LeaseDuration:
		return nil
	default:
		var ok bool
		if got, ok, err = p.Store.TakeDecision(ctx, got, p.WorkerID); err != nil || !ok {
			return err
		}
		p.Log.Warn("the worker deciding the pipeline's first start stalled; deciding in its place",
			zap.String("decider", st.decision.Owner), zap.String("starting_position", got.Position))
	}
	starts := firstRunStarts(got.Position, st.stream.Shards, st.leases)
	if got.Position == string(config.AtTimestamp) {
		starts = atTime(starts, got.Time)
	}
	renew := func() error {
		var ok bool
		if got, ok, err = p.Store.RenewDecision(ctx, got); err == nil && !ok {
			err = errors.New("renew the start decision: another worker took it over")
		}
		return err
	}
	if err := p.createLeases(ctx, st, st.stream.Shards, starts, renew); err != nil {
		return err
	}
	if _, ok, err := p.Store.DecisionDone(ctx, got); err != nil {
		return err
	} else if !ok {
		return errors.New("complete the start decision: another worker took it over")
	}
	st.decided = true
	p.Log.Info("decided the pipeline's first start", zap.String("starting_position", got.Position), zap.Int("leases", len(starts)))
	return nil
}

// firstStart is how a shard's lease is created by the first run's decision.
type firstStart struct {
	StartAt   string
	StartTime time.Time
	Finished  bool
}

// atTime is the AT_TIMESTAMP first run: every shard of a TRIM_HORIZON decision (starts) starts at its
// first record created at or after at, read from its horizon.
func atTime(starts map[string]firstStart, at time.Time) map[string]firstStart {
	for id := range starts {
		starts[id] = firstStart{StartAt: checkpoint.StartAtTime, StartTime: at}
	}
	return starts
}

// firstRunStarts is the first run's decision for every listed shard without a lease. With
// TRIM_HORIZON every shard starts at its horizon. With LATEST ("from now on") a shard whose parent is
// read (it has a lease that is not a skipped one, or is decided so here) starts at TRIM_HORIZON: a
// child never starts at LATEST, or it would skip the records after its parent's end. Any other shard
// (no parent, a parent gone or not listed, or a skipped parent) is skipped when closed and starts at
// LATEST when open. Leases already there (a decider that died half-way, a child created early) are
// taken as they are.
func firstRunStarts(position string, list []shards.Shard, leases map[string]checkpoint.Lease) map[string]firstStart {
	listed := make(map[string]shards.Shard, len(list))
	for _, s := range list {
		listed[s.ID] = s
	}
	out := map[string]firstStart{}
	var startOf func(id string) string // "" (read from the horizon), StartLatest or StartSkipped
	startOf = func(id string) string {
		if l, ok := leases[id]; ok {
			if l.StartAt == checkpoint.StartSkipped {
				return checkpoint.StartSkipped
			}
			return checkpoint.StartLatest // read, from wherever: its children read all
		}
		if fs, ok := out[id]; ok {
			return fs.StartAt
		}
		s := listed[id]
		out[id] = firstStart{} // a cycle of parents (never seen) resolves to the safe TRIM_HORIZON
		parent := checkpoint.StartSkipped
		if _, ok := leases[s.ParentID]; ok || listed[s.ParentID].ID != "" {
			parent = startOf(s.ParentID)
		}
		var fs firstStart
		switch {
		case position != string(config.Latest) || parent != checkpoint.StartSkipped:
		case s.Closed():
			fs = firstStart{StartAt: checkpoint.StartSkipped, Finished: true}
		default:
			fs = firstStart{StartAt: checkpoint.StartLatest}
		}
		out[id] = fs
		return fs.StartAt
	}
	for _, s := range list {
		if _, ok := leases[s.ID]; !ok {
			startOf(s.ID)
		}
	}
	return out
}

// shardStart is where a shard worker starts reading its lease, and what it does before delivering.
type shardStart struct {
	Pos shards.Position
	// Resolve: LATEST was never resolved for this lease; ask for the LATEST iterator, then store
	// start_time (resolveLatest), then read from that iterator.
	Resolve bool
	// Pin: store the first record to be delivered as start_seq before delivering it.
	Pin bool
	// SkipBefore, when set, drops the records at the head of the shard created before it (the
	// TRIM_HORIZON resume of a LATEST lease resolved while its shard was idle).
	SkipBefore time.Time
	// Iterator, when set, is the previous holder's iterator of an idle LATEST lease: read on from it
	// (exact) while it is valid, else as Pos and SkipBefore say.
	Iterator string
}

// startOf decides where a lease is read from: after its checkpoint; else at its pinned first record;
// else, for an AT_TIMESTAMP lease, from TRIM_HORIZON skipping the records created before its time;
// else, for a LATEST lease resolved while its shard was idle, from TRIM_HORIZON skipping the records
// created well before it was resolved; else at LATEST (resolved now, pinned before the first
// delivery); else at TRIM_HORIZON (every shard of a TRIM_HORIZON pipeline, every child).
func startOf(l checkpoint.Lease) shardStart {
	switch {
	case l.Checkpoint != "":
		return shardStart{Pos: shards.After(l.Checkpoint)}
	case l.StartSeq != "":
		return shardStart{Pos: shards.Position{Type: types.ShardIteratorTypeAtSequenceNumber, Seq: l.StartSeq}}
	case l.StartAt == checkpoint.StartAtTime:
		// AT_TIMESTAMP (or reset --to TIME): the first record created at or after StartTime, pinned
		// before it is delivered; DynamoDB Streams has no such iterator.
		return shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: l.StartTime, Iterator: l.StartIterator}
	case l.StartAt == checkpoint.StartLatest && !l.StartTime.IsZero():
		return shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: l.StartTime.Add(-latestSkew), Iterator: l.StartIterator}
	case l.StartAt == checkpoint.StartLatest:
		return shardStart{Pos: shards.Latest, Resolve: true, Pin: true}
	default:
		return shardStart{Pos: shards.TrimHorizon}
	}
}

// resolveLatest resolves a LATEST lease never resolved before: it asks for the LATEST iterator, then
// stores start_time (now, after the iterator was taken), and returns where to read: from that
// iterator, pinning the first record read, exactly as a later holder of the lease would (startOf).
//
// The order matters. start_time is what the lease shows as "resolved", and what a later holder
// skips by; stored before the iterator was taken, a record written between the two (the first
// records, when writes start as soon as the lease shows its start) was after the start by the lease
// yet before the LATEST iterator, and no holder ever delivered it. Stored after, every record written
// after start_time is after the iterator: it is read from there, or, by a later holder without the
// iterator, from the horizon, where the skip spares records created up to latestSkew before
// start_time. A worker that dies between the two stored nothing and delivered nothing: the next
// holder resolves the lease afresh.
func (p *Pipeline) resolveLatest(ctx context.Context, w *shardWorker, r *shards.Reader) (shardStart, error) {
	// A graceful stop (a handoff, a shutdown) ends the wait for the iterator; it leaves the lease
	// unresolved. The write of start_time is not cut short: one whose answer were lost would leave
	// the lease written without this worker knowing.
	askCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-askCtx.Done():
		}
	}()
	iter, err := r.Iterator(askCtx, shards.Latest)
	if err != nil {
		if wait.Closed(w.stop) && ctx.Err() == nil {
			return shardStart{}, context.Canceled // stopped before the lease was resolved: nothing to report
		}
		return shardStart{}, fmt.Errorf("resolve LATEST for shard %s: %w", w.id, err)
	}
	at := time.Now()
	if err := p.pinStart(ctx, w.held, "", at); err != nil {
		return shardStart{}, err
	}
	// A handoff before the first page leaves this iterator to the next holder (checkpoint.Ended).
	w.idleIter.Store(iter)
	return shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: at.Add(-latestSkew), Iterator: iter}, nil
}

// pinFirst passes pages from in to out until in is closed (then it closes out) or ctx is done. Until
// a record was passed on, it drops the records at a page's head created before skipBefore (if set),
// and pins the first record it passes on (pin, a fenced write) before passing it: so a restart
// resumes at that record, never resolving LATEST again. A pin that fails returns its error without
// closing out (a closed out would mean the shard is gone). Until a record is pinned, idle is told
// the iterator after each page (the shard's position while nothing was delivered); then "". skip is
// told how many records of each page were dropped.
func pinFirst(ctx context.Context, in <-chan shards.Page, out chan<- shards.Page, skipBefore time.Time, pin func(context.Context, string) error, idle func(string), skip func(n int), log *zap.Logger) error {
	pinned, skipped := false, 0
	for {
		var pg shards.Page
		select {
		case p, ok := <-in:
			if !ok {
				close(out)
				return nil
			}
			pg = p
		case <-ctx.Done():
			return nil
		}
		if !pinned {
			recs, n := pg.Records, 0
			for len(recs) > 0 && !skipBefore.IsZero() && createdBefore(recs[0], skipBefore) {
				recs, n = recs[1:], n+1
			}
			if n > 0 {
				skipped += n
				skip(n)
			}
			if len(recs) > 0 {
				seq := aws.ToString(recs[0].Dynamodb.SequenceNumber)
				if err := pin(ctx, seq); err != nil {
					return err
				}
				pinned = true
				idle("")
				log.Info("pinned the shard's start before its first delivery", zap.String("start_seq", seq), zap.Int("skipped_before_start", skipped))
			}
			pg.Records = recs
			if !pinned {
				idle(pg.Next)
			}
		}
		select {
		case out <- pg:
		case <-ctx.Done():
			return nil
		}
	}
}

// createdBefore says whether r was created before t; a record without a creation time was not.
func createdBefore(r types.Record, t time.Time) bool {
	c := r.Dynamodb.ApproximateCreationDateTime
	return c != nil && c.Before(t)
}

// pinAttempts is how many times pinStart writes a LATEST lease's start before it gives up.
const pinAttempts = 3

// pinStart stores a LATEST lease's resolved start (seq, or the moment at), retrying a failed write a
// few times; a refused write (the lease was taken) is errLeaseLost at once.
func (p *Pipeline) pinStart(ctx context.Context, held *checkpoint.Held, seq string, at time.Time) error {
	backoff := func(attempt int) time.Duration { return time.Duration(attempt) * 200 * time.Millisecond }
	err := wait.Retry(ctx, nil, backoff, func(attempt int) error {
		owned, err := held.PinStart(ctx, seq, at)
		switch {
		case err == nil && !owned:
			return wait.Permanent(errLeaseLost)
		case err != nil && attempt >= pinAttempts:
			return wait.Permanent(err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("pin the start of shard %s: %w", held.Lease().ShardID, err)
	}
	return nil
}
