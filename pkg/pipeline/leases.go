package pipeline

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/shards"
)

// The loop's lease work, each round: renew, forget dead workers, delete finished leases past
// retention, and balance (plan.go decides; this file carries the plan out).

// forgetDead removes the items of workers whose heartbeat stood still for lease_duration, so that
// the fair share is computed over live workers only. Any worker may do it; the write is conditional
// on the counter it saw, so a worker that heartbeats again meanwhile keeps its item.
func (p *Pipeline) forgetDead(ctx context.Context, dead []checkpoint.Worker) {
	for _, w := range dead {
		if w.ID == p.WorkerID {
			continue
		}
		if ok, err := p.Store.DeleteWorker(ctx, w); err != nil {
			p.Log.Debug("removing a dead worker's item failed; retrying next round", zap.String("dead_worker", w.ID), zap.Error(err))
		} else if ok {
			p.Log.Info("removed the item of a dead worker", zap.String("dead_worker", w.ID))
		}
	}
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

// balance carries out this round's lease plan (see plan): hand over what live workers asked for,
// resume this worker's own leases, take free and expired ones up to the fair share, ask the most
// loaded worker for a few, and take over the ones asked for whose owner did not hand them over
// within lease_duration.
func (p *Pipeline) balance(ctx context.Context, st *state, now time.Time, expired map[string]bool, live []string) {
	lin := shards.Lineage{
		Finished: func(id string) bool { return st.leases[id].Finished },
		Tracked:  func(id string) bool { _, ok := st.leases[id]; return ok },
	}
	ready := map[string]bool{}
	for _, s := range lin.Ready(st.shardList()) {
		ready[s.ID] = true
	}
	leases := make([]checkpoint.Lease, 0, len(st.leases))
	for _, l := range st.leases {
		leases = append(leases, l)
	}
	running := make(map[string]bool, len(st.running))
	for id := range st.running {
		running[id] = true
	}
	overdue := map[string]bool{}
	for id, at := range st.wants {
		l, ok := st.leases[id]
		switch {
		case !ok || (l.WantedBy != p.WorkerID && l.Owner != p.WorkerID):
			delete(st.wants, id) // answered to someone else, or withdrawn
		case now.Sub(at) >= p.LeaseDuration:
			overdue[id] = true
		}
	}
	pl := plan(planInput{
		Me: p.WorkerID, Leases: leases, Ready: ready, Expired: expired, Live: live,
		Running: running, Overdue: overdue, MaxWants: maxWantsPerRound,
	})

	for _, h := range pl.Handoff {
		if _, ok := st.handoffs[h.ShardID]; ok {
			continue
		}
		p.Log.Info("handing a lease over on request: finishing the batches in flight first",
			zap.String("shard_id", h.ShardID), zap.String("to", h.To), zap.Int("fair_share", pl.Target), zap.Int("workers", pl.Workers))
		st.handoffs[h.ShardID] = h.To
		close(st.running[h.ShardID].stop)
	}
	p.takeUpTo(ctx, st, pl.Resume, len(pl.Resume))
	taken := p.takeUpTo(ctx, st, pl.Take, pl.TakeUpTo)
	for _, l := range pl.Want {
		ok, err := p.Store.Want(ctx, l, p.WorkerID)
		switch {
		case err != nil:
			p.Log.Warn("asking for a lease failed", zap.String("shard_id", l.ShardID), zap.Error(err))
		case ok:
			st.wants[l.ShardID] = now
			p.Log.Info("asked for a lease", zap.String("shard_id", l.ShardID), zap.String("owner", l.Owner),
				zap.Int("fair_share", pl.Target), zap.Int("workers", pl.Workers))
		}
	}
	for _, l := range pl.Steal {
		p.Log.Warn("the owner did not hand an asked-for lease over within lease_duration; taking it over",
			zap.String("shard_id", l.ShardID), zap.String("owner", l.Owner))
	}
	p.takeUpTo(ctx, st, pl.Steal, len(pl.Steal))
	p.hooks.OnLeasesOwned(len(st.running))
	p.Log.Debug("lease round", zap.Int("workers", pl.Workers), zap.Int("fair_share", pl.Target), zap.Int("running", len(st.running)),
		zap.Int("handing_over", len(st.handoffs)), zap.Int("resumed", len(pl.Resume)), zap.Int("taken", taken),
		zap.Int("asked", len(pl.Want)), zap.Int("stolen", len(pl.Steal)), zap.Duration("round", time.Since(now)))
}

// takeUpTo takes leases of list, in order, until n were taken or the list ends, and starts their
// shard workers; it returns how many it took. The Take calls run in parallel, in waves of the number
// still missing, so that a worker taking many leases (at start, or after a failover) does it within
// one round.
func (p *Pipeline) takeUpTo(ctx context.Context, st *state, list []checkpoint.Lease, n int) int {
	type result struct {
		held *checkpoint.Held
		at   time.Time
	}
	taken := 0
	for len(list) > 0 && taken < n {
		wave := list[:min(n-taken, len(list))]
		list = list[len(wave):]
		results := make([]result, len(wave))
		var g errgroup.Group
		g.SetLimit(renewConcurrency)
		for i, l := range wave {
			g.Go(func() error {
				at := time.Now()
				held, owned, err := p.Store.Take(ctx, l, p.WorkerID)
				switch {
				case err != nil:
					p.Log.Warn("taking a lease failed", zap.String("shard_id", l.ShardID), zap.Error(err))
				case owned:
					results[i] = result{held, at}
				} // not owned: another worker was faster, or the owner wrote since; the next List shows it
				return nil
			})
		}
		_ = g.Wait() // every Take reports its own error
		for i, r := range results {
			if r.held == nil {
				continue
			}
			taken++
			l := wave[i]
			_, asked := st.wants[l.ShardID]
			delete(st.wants, l.ShardID)
			switch {
			case l.Owner != "" && l.Owner != p.WorkerID:
				p.hooks.OnLeaseTakeover(l.ShardID)
				p.Log.Info("took a lease over", zap.String("shard_id", l.ShardID), zap.String("previous_owner", l.Owner))
			case asked && l.Owner == p.WorkerID:
				p.hooks.OnLeaseTakeover(l.ShardID)
				p.Log.Info("took a lease handed over on request", zap.String("shard_id", l.ShardID))
			}
			p.start(ctx, st, r.held, r.at)
		}
	}
	return taken
}

// renewUntil renews the running workers' leases every renew_interval until done is closed. It only
// reads st, which the loop does not change meanwhile (it waits in stopAll); a lease found lost stops
// its worker at its next checkpoint.
func (p *Pipeline) renewUntil(ctx context.Context, st *state, done <-chan struct{}) {
	tick := time.NewTicker(p.RenewInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-done:
			return
		case <-ctx.Done():
			return
		}
		var g errgroup.Group
		g.SetLimit(renewConcurrency)
		for id, w := range st.running {
			f := st.fences[id]
			g.Go(func() error {
				at := time.Now()
				if owned, err := w.held.Renew(ctx); err == nil && owned {
					f.confirm(at)
				}
				return nil
			})
		}
		_ = g.Wait() // a failed renewal shows at the worker's next checkpoint
	}
}

// renew renews every held lease, in parallel; a worker whose lease was taken is stopped at once.
func (p *Pipeline) renew(ctx context.Context, st *state) {
	var (
		g    errgroup.Group
		mu   sync.Mutex
		lost []string
	)
	g.SetLimit(renewConcurrency)
	// A renewal slower than half a lease cannot keep the lease anyway; bounding it keeps one hung
	// call from holding up the round (and with it every other renewal and the heartbeat).
	rctx, cancel := context.WithTimeout(ctx, p.LeaseDuration/2)
	defer cancel()
	for id, w := range st.running {
		f := st.fences[id]
		g.Go(func() error {
			at := time.Now()
			owned, err := w.held.Renew(rctx)
			switch {
			case err != nil:
				p.Log.Warn("renewing a lease failed; retrying at the next tick", zap.String("shard_id", id), zap.Error(err))
			case owned:
				f.confirm(at)
			default:
				mu.Lock()
				lost = append(lost, id)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // every renewal reports its own error
	for _, id := range lost {
		p.Log.Warn("lease lost to another worker; stopping the shard", zap.String("shard_id", id))
		st.running[id].cancel()
	}
	for _, id := range lost {
		<-st.running[id].done
		p.forget(st, id)
	}
}
