package checkpoint

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Balance carries out the round's lease plan (see plan) over scope, from the table as the round's
// List saw it, with the fair share counted over every pipeline of the process (Fleet): it picks the
// running leases live workers asked for (Moves.Drain), resumes this worker's own leases, takes free
// and expired ones up to the fair share, asks the most loaded worker for a few, and takes over the
// ones asked for whose owner did not hand them over within lease_duration (Moves.Start). Call it
// after a List that succeeded.
func (c *Coordinator) Balance(ctx context.Context, scope Scope) Moves {
	if c.paused {
		c.keepOwn(ctx, scope.Leases)
		c.log.Debug("lease round while paused: nothing moves", zap.Int("kept", len(c.running)))
		c.publish()
		c.hooks.OnLeasesOwned(len(c.running))
		c.hooks.OnLeaseRound(nil)
		return Moves{}
	}
	now := c.listedAt
	byID := make(map[string]Lease, len(scope.Leases))
	for _, l := range scope.Leases {
		byID[l.ShardID] = l
	}
	running := make(map[string]bool, len(c.running))
	for id := range c.running {
		running[id] = true
	}
	live := make([]string, 0, len(c.live))
	for w := range c.live {
		live = append(live, w)
	}
	in := planInput{
		Me: c.me, Leases: scope.Leases, Ready: scope.Ready, Expired: c.expired, Stranded: c.tracker.stranded,
		Live: live, Running: running, Overdue: c.overdue(byID, now), MaxWants: maxWantsPerRound,
	}
	pl := c.fleet.plan(c.pipeline, func(elsewhere share, partial bool) leasePlan {
		in.Elsewhere, in.Partial = elsewhere, partial
		return plan(in)
	})

	var m Moves
	for _, h := range pl.Handoff {
		if r := c.running[h.ShardID]; r.to == "" {
			c.log.Info("handing a lease over on request: finishing the batches in flight first",
				zap.String("shard_id", h.ShardID), zap.String("to", h.To), zap.Int("fair_share", pl.Target), zap.Int("workers", pl.Workers))
			r.to = h.To
			m.Drain = append(m.Drain, h.ShardID)
		}
	}
	m.Start = append(m.Start, c.takeUpTo(ctx, pl.Resume, len(pl.Resume))...)
	adopted := c.takeUpTo(ctx, pl.Adopt, len(pl.Adopt))
	m.Start = append(m.Start, adopted...)
	taken := c.takeUpTo(ctx, pl.Take, pl.TakeUpTo)
	m.Start = append(m.Start, taken...)
	asked := c.want(ctx, pl, now)
	// The plan counted its takes and requests as done; the other pipelines count what was done.
	c.fleet.adjust(c.pipeline, c.me, len(adopted)+len(taken)+asked-len(pl.Adopt)-min(pl.TakeUpTo, len(pl.Take))-len(pl.Want))
	if len(pl.Want) > asked {
		c.fleet.adjust(c.pipeline, pl.Want[0].Owner, len(pl.Want)-asked)
	}
	for _, l := range pl.Steal {
		c.log.Warn("the owner did not hand an asked-for lease over within lease_duration; taking it over",
			zap.String("shard_id", l.ShardID), zap.String("owner", l.Owner))
	}
	m.Start = append(m.Start, c.takeUpTo(ctx, pl.Steal, len(pl.Steal))...)
	m = c.wake(ctx, m, byID)
	c.publish()
	c.hooks.OnLeasesOwned(len(c.running))
	c.log.Debug("lease round", zap.Int("workers", pl.Workers), zap.Int("fair_share", pl.Target), zap.Int("running", len(c.running)),
		zap.Int("handing_over", c.handingOver()), zap.Int("resumed", len(pl.Resume)), zap.Int("taken", len(taken)+len(adopted)),
		zap.Int("asked", asked), zap.Int("stolen", len(pl.Steal)), zap.Duration("round", c.now().Sub(now)))
	c.hooks.OnLeaseRound(nil)
	return m
}

// overdue returns the leases this worker asked for over lease_duration ago, and forgets the requests
// answered to someone else or withdrawn.
func (c *Coordinator) overdue(leases map[string]Lease, now time.Time) map[string]bool {
	overdue := map[string]bool{}
	for id, at := range c.wants {
		l, ok := leases[id]
		switch {
		case !ok || (l.WantedBy != c.me && l.Owner != c.me):
			delete(c.wants, id) // answered to someone else, or withdrawn
		case now.Sub(at) >= c.leaseDuration:
			overdue[id] = true
		}
	}
	return overdue
}

// want asks for the plan's Want leases (Store.Want) and returns how many requests were written.
func (c *Coordinator) want(ctx context.Context, pl leasePlan, now time.Time) int {
	n := 0
	for _, l := range pl.Want {
		ok, err := c.store.Want(ctx, l, c.me)
		switch {
		case err != nil:
			c.log.Warn("asking for a lease failed", zap.String("shard_id", l.ShardID), zap.Error(err))
		case ok:
			n++
			c.wants[l.ShardID] = now
			c.log.Info("asked for a lease", zap.String("shard_id", l.ShardID), zap.String("owner", l.Owner),
				zap.Int("fair_share", pl.Target), zap.Int("workers", pl.Workers))
		}
	}
	return n
}

func (c *Coordinator) handingOver() int {
	n := 0
	for _, r := range c.running {
		if r.to != "" {
			n++
		}
	}
	return n
}

// takeUpTo takes leases of list, in order, until n were taken or the list ends, and returns them,
// to run. The Take calls run in parallel, in waves of the number still missing, so that a worker
// taking many leases (at start, or after a failover) does it within one round.
func (c *Coordinator) takeUpTo(ctx context.Context, list []Lease, n int) []Grant {
	var grants []Grant
	for len(list) > 0 && len(grants) < n {
		wave := list[:min(n-len(grants), len(list))]
		list = list[len(wave):]
		for i, g := range c.takeWave(ctx, wave) {
			if g.Held != nil {
				c.took(wave[i], g)
				grants = append(grants, g)
			}
		}
	}
	return grants
}

// takeWave takes the leases of wave in parallel; a lease not taken has a zero Grant. Each fence is
// confirmed as of when its Take was sent.
func (c *Coordinator) takeWave(ctx context.Context, wave []Lease) []Grant {
	grants := make([]Grant, len(wave))
	var g errgroup.Group
	g.SetLimit(leaseWriteConcurrency)
	for i, l := range wave {
		l.OwnerBeat = c.ownerBeats[l.ShardID] // an owner that vouches for it: Take fences its heartbeat too
		g.Go(func() error {
			at := c.now()
			held, owned, err := c.store.Take(ctx, l, c.me)
			switch {
			case err != nil:
				c.log.Warn("taking a lease failed", zap.String("shard_id", l.ShardID), zap.Error(err))
			case owned:
				f := NewFence(held, c.fenceTrust(), c.renewInterval/2, c.now)
				f.Confirm(at)
				grants[i] = Grant{Held: held, Fence: f}
			} // not owned: another worker was faster, or the owner wrote since; the next List shows it
			return nil
		})
	}
	_ = g.Wait() // every Take reports its own error
	return grants
}

// took records a lease taken as l was listed.
func (c *Coordinator) took(l Lease, g Grant) {
	_, wanted := c.wants[l.ShardID]
	delete(c.wants, l.ShardID)
	switch {
	case l.Owner != "" && l.Owner != c.me:
		c.hooks.OnLeaseTakeover(l.ShardID)
		c.log.Info("took a lease over", zap.String("shard_id", l.ShardID), zap.String("previous_owner", l.Owner))
	case wanted && l.Owner == c.me:
		c.hooks.OnLeaseTakeover(l.ShardID)
		c.log.Info("took a lease handed over on request", zap.String("shard_id", l.ShardID))
	}
	c.running[l.ShardID] = &running{held: g.Held, fence: g.Fence}
}

// fenceTrust is how long a confirmed lease nobody asked for is trusted before a call without
// renewing it first (see Fence).
func (c *Coordinator) fenceTrust() time.Duration {
	if d := c.leaseDuration - c.renewInterval; d > 0 {
		return d
	}
	return c.leaseDuration / 2
}

// SetPaused switches the coordinator's pause (the pipeline's control item, read each round). While
// paused, Balance takes, asks for, steals and hands over nothing, and the leases whose workers
// ended are kept and renewed (see Ended); the first Balance after resume starts them again.
func (c *Coordinator) SetPaused(paused bool) { c.paused = paused }

// keepOwn takes back, while paused, the leases the table lists as this worker's that it does not
// hold (a restart while paused): they are kept idle and renewed, as the ones paused in this run.
func (c *Coordinator) keepOwn(ctx context.Context, leases []Lease) {
	var own []Lease
	for _, l := range leases {
		if _, held := c.running[l.ShardID]; !held && l.Owner == c.me && !l.Finished {
			own = append(own, l)
		}
	}
	for _, g := range c.takeUpTo(ctx, own, len(own)) {
		c.running[g.Held.Lease().ShardID].idle = true
	}
}

// wake starts the leases kept idle while paused (Moves.Start), or, for one the plan hands over (its
// worker drained already), hands it over at once rather than draining it (out of Moves.Drain). A
// kept lease the listing shows written by another (poller reset frees the lease) is dropped, never
// run from the position this worker held in memory: the next rounds take it afresh from the table.
func (c *Coordinator) wake(ctx context.Context, m Moves, listed map[string]Lease) Moves {
	for id, r := range c.running {
		if !r.idle {
			continue
		}
		r.idle = false
		if l, ok := listed[id]; !ok || l.Owner != c.me || l.Counter != r.held.Lease().Counter {
			c.log.Info("a lease kept while paused was written by another (reset?); taking it afresh", zap.String("shard_id", id))
			delete(c.running, id)
			m.Drain = slices.DeleteFunc(m.Drain, func(d string) bool { return d == id })
			continue
		}
		if r.to == "" {
			m.Start = append(m.Start, Grant{Held: r.held, Fence: r.fence})
			continue
		}
		m.Drain = slices.DeleteFunc(m.Drain, func(d string) bool { return d == id })
		delete(c.running, id)
		if _, err := c.handOver(ctx, r.held, r.to); err != nil {
			c.log.Warn("handing a lease over failed; it expires and is taken", zap.String("shard_id", id), zap.Error(err))
		}
	}
	return m
}
