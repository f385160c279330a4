package checkpoint

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// leaseWriteConcurrency bounds the lease writes in flight at once (renewals, takes, releases): a
// round of thousands of leases is bounded by the table's latency divided by this, not by a queue of
// a few writers.
const leaseWriteConcurrency = 64

// The time a renewal round may take does not grow with the leases held:
//
//   - Each write has a deadline of its own (writeTimeout), not one shared by the round: a slow or hung
//     write fails alone instead of taking the writes queued behind it down with it.
//   - A lease confirmed by a write of its own within most of a renew_interval (a checkpoint above
//     all: every fenced write bumps the counter, as a renewal does) is not renewed again this round
//     (due): a busy shard's checkpoints renew it.
//   - The leases due are renewed longest-unconfirmed first, and none is started after renewBudget:
//     when the table cannot take them all within it, the rest are first in line at the next round,
//     and the round still ends in time for the heartbeat and the listing. Should the oldest be
//     older than half a lease_duration, Renew warns: the table does not keep up with the leases.

// writeTimeout bounds one lease write (a renewal, a release): half a lease_duration, as long as a
// whole round was given before, so that a slow table fails no more writes than it did then.
func (c *Coordinator) writeTimeout() time.Duration { return c.leaseDuration / 2 }

// renewBudget is how long after it began a renewal round starts no more writes: three quarters of a
// renew_interval, the rest being for the writes in flight, the heartbeat and the listing.
func (c *Coordinator) renewBudget() time.Duration { return c.renewInterval - c.renewInterval/4 }

// renewal is a lease due for renewal.
type renewal struct {
	id        string
	held      *Held
	fence     *Fence
	confirmed time.Time
}

// renewAge is how long a lease may go unconfirmed before a round renews it: about a third of a
// lease_duration, so that a lease gets three rounds' chances to be renewed before it could be taken,
// and never less than three quarters of a renew_interval (so that a round run off the tick, on an
// expiry or an ended worker, renews nothing renewed by the round before). Half a renew_interval is
// taken off a third of the lease_duration for the spread of a round's writes over its budget: at the
// defaults (10 s, 2 s) a lease is renewed every other round, every 4 s, half the writes (and half the
// lease-table cost at rest) of renewing it every round, with renewals due at ages 4, 6 and 8 s. A
// lease_duration of less than about four renew_intervals is renewed every round.
func (c *Coordinator) renewAge() time.Duration {
	return max(c.renewInterval-c.renewInterval/4, c.leaseDuration/3-c.renewInterval/2)
}

// due returns the leases to renew at now, longest unconfirmed first: every lease not confirmed within
// renewAge; every lease the last List showed asked for or held by another (its confirmations extend
// no trust, and the renewal finds a lost lease at once); and every lease already known lost (no call:
// Renew reports it).
func (c *Coordinator) due(now time.Time) []renewal {
	fresh := c.renewAge()
	var list []renewal
	for id, r := range c.running {
		at, contested := r.fence.state()
		if r.held.Owned() && !contested && now.Sub(at) < fresh {
			continue
		}
		list = append(list, renewal{id: id, held: r.held, fence: r.fence, confirmed: at})
	}
	slices.SortFunc(list, func(a, b renewal) int { return a.confirmed.Compare(b.confirmed) })
	return list
}

// renewStats is what a renewal round did.
type renewStats struct {
	lost                     []string
	renewed, failed, delayed int
}

// renewAll renews list, leaseWriteConcurrency at a time, each write under its own deadline, and
// starts none after stopAt (the rest are delayed to the next round).
func (c *Coordinator) renewAll(ctx context.Context, list []renewal, stopAt time.Time) renewStats {
	var (
		st renewStats
		mu sync.Mutex
	)
	started := eachLimited(ctx, len(list), func(i int) bool {
		return i == 0 || c.now().Before(stopAt)
	}, func(i int) {
		r := list[i]
		wctx, cancel := context.WithTimeout(ctx, c.writeTimeout())
		defer cancel()
		at := c.now()
		owned, err := r.held.Renew(wctx)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && ctx.Err() != nil:
			st.failed++ // the round was called off (a graceful stop): nothing to report
		case err != nil:
			st.failed++
			c.log.Warn("renewing a lease failed; retrying at the next tick", zap.String("shard_id", r.id), zap.Error(err))
		case owned:
			st.renewed++
			r.fence.Confirm(at)
		default:
			st.lost = append(st.lost, r.id)
		}
	})
	st.delayed = len(list) - started
	return st
}

// eachLimited calls fn(i) for i from 0 up, leaseWriteConcurrency at a time, while ctx is not done and
// may(i) says so, waits for the calls and returns how many it started.
func eachLimited(ctx context.Context, n int, may func(i int) bool, fn func(i int)) int {
	slots := make(chan struct{}, leaseWriteConcurrency)
	var wg sync.WaitGroup
	started := 0
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || !may(i) {
			break
		}
		started++
		wg.Go(func() {
			defer func() { <-slots }()
			fn(i)
		})
	}
	wg.Wait()
	return started
}

// Renew renews the leases held that are due (see due), in parallel, and returns the shards whose
// lease was found taken by another worker: the pipeline stops their workers at once (cancel, not
// drain: they must not deliver for a shard this worker no longer owns). The coordinator forgets them.
// A renewal that failed or was not started within the round's budget is retried at the next round,
// first in line.
func (c *Coordinator) Renew(ctx context.Context) (lost []string) {
	began := c.now()
	list := c.due(began)
	behind := len(list) > 0 && !list[0].confirmed.IsZero() && began.Sub(list[0].confirmed) > c.leaseDuration/2
	if behind {
		c.log.Warn("lease renewals fall behind: the lease table does not take every lease's renewal each renew_interval; leases may expire",
			zap.String("shard_id", list[0].id), zap.Duration("unconfirmed_for", began.Sub(list[0].confirmed)), zap.Int("due", len(list)))
	}
	st := c.renewAll(ctx, list, began.Add(c.renewBudget()))
	if c.beating.Load() {
		c.renewBehind.Store(behind) // the heartbeat goroutine tells the Pace
	} else if c.pacer != nil {
		c.pacer.Round(behind)
	}
	for _, id := range st.lost {
		c.log.Warn("lease lost to another worker; stopping the shard", zap.String("shard_id", id))
		delete(c.running, id)
	}
	c.log.Debug("renewed leases", zap.Int("held", len(c.running)+len(st.lost)), zap.Int("due", len(list)),
		zap.Int("renewed", st.renewed), zap.Int("failed", st.failed), zap.Int("delayed", st.delayed),
		zap.Int("lost", len(st.lost)), zap.Duration("took", c.now().Sub(began)))
	c.observeRenewals(began, st.failed)
	c.publish()
	return st.lost
}

// RenewUntil renews the leases held every renew_interval until done is closed or ctx is done, as
// Renew does (a lease checkpointed within the interval needs no renewal): on a graceful stop, while
// the batches in flight finish, so that a slow sink does not let the leases expire under the drain
// (another worker would then deliver the same batches again). It only reads the coordinator, which its
// owner does not call meanwhile; a lease found lost stops its shard worker at its next checkpoint.
func (c *Coordinator) RenewUntil(ctx context.Context, done <-chan struct{}) {
	tick := time.NewTicker(c.renewInterval)
	defer tick.Stop()
	for nextTick(ctx, tick.C, done) {
		began := c.now()
		c.renewAll(ctx, c.due(began), began.Add(c.renewBudget())) // a lost lease shows at the worker's next checkpoint
	}
}

// leaveAll releases the leases of ended (hands over the ones asked for), in parallel, each write under
// its own deadline.
func (c *Coordinator) leaveAll(ctx context.Context, ended []Ended) {
	var leaving []Ended
	for _, e := range ended {
		if _, ok := c.running[e.ShardID]; ok && !e.Finished {
			leaving = append(leaving, e)
		}
	}
	eachLimited(ctx, len(leaving), func(int) bool { return true }, func(i int) {
		e := leaving[i]
		r := c.running[e.ShardID]
		pctx, cancel := context.WithTimeout(ctx, c.writeTimeout())
		c.leaveIdle(pctx, r.held, e.IdleIterator)
		cancel()
		wctx, cancel := context.WithTimeout(ctx, c.writeTimeout())
		defer cancel()
		var err error
		if r.to != "" {
			_, err = c.handOver(wctx, r.held, r.to)
		} else {
			_, err = r.held.Release(wctx)
		}
		if err != nil {
			c.log.Warn("releasing a lease failed; it expires after lease_duration", zap.String("shard_id", e.ShardID), zap.Error(err))
		}
	})
}
