package pipeline

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/shards"
)

// The pipeline's side of the leases: a lease for every shard of the stream being read (created as
// shards are found, the first run's as decided in start.go), deleted once the shard is gone and its
// retention passed. Who holds which lease is the coordinator's job (checkpoint.Coordinator).

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
const decisionRenewEvery = 256

// createConcurrency bounds the lease creations in flight at once: thousands of shards get their
// leases in seconds, not one write after the other.
const createConcurrency = 32

// createLeases adds a lease for every shard of list that has none: as starts says for the first
// run's decision, else at TRIM_HORIZON (at its parent's time, for the child of an AT_TIMESTAMP
// lease). The creations run in parallel, in chunks of
// decisionRenewEvery; renew, if set, is called before every chunk but the first.
func (p *Pipeline) createLeases(ctx context.Context, st *state, list []shards.Shard, starts map[string]firstStart, renew func() error) error {
	var todo []checkpoint.Lease
	for _, s := range list {
		if _, ok := st.leases[s.ID]; ok {
			continue
		}
		l := checkpoint.Lease{Pipeline: p.Name, ShardID: s.ID, StreamARN: st.stream.ARN}
		if s.ParentID != "" {
			l.Parents = []string{s.ParentID}
		}
		if fs, ok := starts[s.ID]; ok {
			l.StartAt, l.StartTime, l.Finished = fs.StartAt, fs.StartTime, fs.Finished
		} else if parent, ok := st.leases[s.ParentID]; ok && parent.StartAt == checkpoint.StartAtTime {
			// A child of a shard started at a time skips what its parent skips: a time in the
			// future (a planned cut-over) may be after the child's first records too.
			l.StartAt, l.StartTime = parent.StartAt, parent.StartTime
		}
		todo = append(todo, l)
	}
	for i := 0; i < len(todo); i += decisionRenewEvery {
		if renew != nil && i > 0 {
			if err := renew(); err != nil {
				return err
			}
		}
		chunk := todo[i:min(i+decisionRenewEvery, len(todo))]
		created, err := p.createAll(ctx, chunk)
		for j, l := range chunk {
			if created[j] {
				l.Counter = 1 // as Create writes it, so the lease can be taken in this same round
				st.leases[l.ShardID] = l
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// createAll creates the leases of list, createConcurrency at a time, and says which it created (an
// existing lease is left as it is). The first error is returned once every creation ended.
func (p *Pipeline) createAll(ctx context.Context, list []checkpoint.Lease) ([]bool, error) {
	created := make([]bool, len(list))
	var g errgroup.Group
	g.SetLimit(createConcurrency)
	for i, l := range list {
		g.Go(func() error {
			ok, err := p.Store.Create(ctx, l)
			if err != nil {
				return fmt.Errorf("create lease for shard %s: %w", l.ShardID, err)
			}
			created[i] = ok
			return nil
		})
	}
	return created, g.Wait()
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

// describePageEvery is the least time per DescribeStream page between two full listings: a listing
// reads one page per 100 shards, and the API allows 10 calls a second per stream, shared by every
// replica and every other reader of the stream.
const describePageEvery = time.Second

// refreshEvery is the time between two full listings of a stream of n shards: every, or one
// describePageEvery per page when that is longer (40 s at 4,000 shards), so that a replica spends at
// most about one DescribeStream call a second on listings. New shards do not wait for it: a finished
// shard's children are looked up at once (startChildren).
func refreshEvery(every time.Duration, n int) time.Duration {
	pages := (n + 99) / 100
	return max(every, time.Duration(pages)*describePageEvery)
}

// ready returns the shards that may be read now: unfinished, parents finished (shards.Lineage).
func (st *state) ready() map[string]bool {
	lin := shards.Lineage{
		Finished: func(id string) bool { return st.leases[id].Finished },
		Tracked:  func(id string) bool { _, ok := st.leases[id]; return ok },
	}
	ready := map[string]bool{}
	for _, s := range lin.Ready(st.shardList()) {
		ready[s.ID] = true
	}
	return ready
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

// deleteFinished deletes the finished leases that deletable allows (their shard is gone from the
// listing, their children run, the stream's retention passed). It runs with each full listing.
func (p *Pipeline) deleteFinished(ctx context.Context, st *state, leases []checkpoint.Lease) {
	listed := make(map[string]bool, len(st.stream.Shards))
	for _, s := range st.stream.Shards {
		listed[s.ID] = true
	}
	for _, l := range deletable(leases, listed, time.Now(), finishedRetention) {
		ok, err := p.Store.Delete(ctx, l)
		switch {
		case err != nil:
			p.Log.Warn("deleting a finished lease failed; retrying at the next refresh", zap.String("shard_id", l.ShardID), zap.Error(err))
		case ok:
			delete(st.leases, l.ShardID)
			p.Log.Info("deleted a finished lease past the stream's retention", zap.String("shard_id", l.ShardID))
		}
	}
}

// finishedRetention is how long a finished lease is kept after its last write: the stream's 24-hour
// retention, plus an hour for the difference between the writer's wall clock and the reader's.
const finishedRetention = 25 * time.Hour

// deletable returns the finished leases that may be deleted now: the stream no longer lists the
// shard, the lease was last written over retention ago (by wall clock: the stream's retention is
// counted in hours, so clock skew of seconds does not matter), and every child shard's lease has
// started (owned, checkpointed or finished). Deleting earlier risks a lineage replay: a listed shard
// without a lease gets a new one and is read again, and a child whose parent lease is gone starts at
// once.
func deletable(leases []checkpoint.Lease, listed map[string]bool, now time.Time, retention time.Duration) []checkpoint.Lease {
	children := map[string][]checkpoint.Lease{}
	for _, l := range leases {
		for _, parent := range l.Parents {
			children[parent] = append(children[parent], l)
		}
	}
	var out []checkpoint.Lease
	for _, l := range leases {
		if !l.Finished || listed[l.ShardID] || l.UpdatedAt.IsZero() || now.Sub(l.UpdatedAt) < retention {
			continue
		}
		started := true
		for _, c := range children[l.ShardID] {
			if c.Owner == "" && c.Checkpoint == "" && !c.Finished {
				started = false
			}
		}
		if started {
			out = append(out, l)
		}
	}
	return out
}
