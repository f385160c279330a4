package checkpoint

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The heartbeat is this worker's liveness for the other replicas, and, while every worker vouches,
// what keeps its caught-up leases (see Fence.Vouch). So it must not wait for the round: a round that
// takes thousands of leases, or the first run's decider creating thousands of leases, would otherwise
// hold the heartbeat back past lease_duration, and the other replicas would take every lease of a
// live worker. StartHeartbeats runs it on a goroutine of its own, every renew_interval; without it
// (tests of single rounds), List beats first, as a round's first step.

// StartHeartbeats writes this worker's heartbeat at once and then every renew_interval, on a
// goroutine of its own, until stop is called or ctx is done. stop lets a heartbeat in flight finish
// (cut short, it could still land after Leave read the counter, and Leave's removal of the item would
// fail) and waits for the goroutine. Call it once, before the first round; call stop before Leave.
func (c *Coordinator) StartHeartbeats(ctx context.Context) (stop func()) {
	c.beating.Store(true)
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(c.renewInterval)
		defer tick.Stop()
		for {
			behind := c.heartbeat(ctx)
			if c.pacer != nil {
				c.pacer.Round(behind || c.renewBehind.Load() || c.roundsBehind.Load())
			}
			if !nextTick(ctx, tick.C, done) {
				return
			}
		}
	})
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// nextTick waits for tick and says true, or says false once done is closed or ctx is done.
func nextTick(ctx context.Context, tick <-chan time.Time, done <-chan struct{}) bool {
	select {
	case <-tick:
		return true
	case <-done:
		return false
	case <-ctx.Done():
		return false
	}
}

// publish makes the leases held now what the next heartbeat vouches for.
func (c *Coordinator) publish() {
	held := slices.Collect(maps.Values(c.running))
	c.held.Store(&held)
}

// heartbeat writes this worker's heartbeat, and says whether it came late: over half a
// lease_duration after the last one that succeeded was sent (the process is short of CPU, or the
// table slow), when the other replicas may soon count this worker gone.
//
// A clean heartbeat vouches, as of when it was sent, for every lease held whose shard is caught up,
// while every worker vouches (vouching): they need no renewal of their own. A shard with records not
// done yet is renewed on its own still, which keeps its lag in the table current for `poller
// status`. One that is not clean found a lease of this worker taken over its heartbeat (or its item
// removed): no lease is vouched for until a write of its own confirms it, so each is renewed when
// its last confirmation ages, and the one taken is found lost.
func (c *Coordinator) heartbeat(ctx context.Context) (late bool) {
	sent := c.now()
	late = !c.beatSent.IsZero() && sent.Sub(c.beatSent) > c.leaseDuration/2
	b, clean, err := c.store.Beat(ctx, c.pipeline, c.me, c.beat)
	if err != nil {
		if ctx.Err() == nil {
			// Other replicas count a worker whose heartbeat stands still as dead and share out its
			// leases' future; say so at once.
			c.log.Warn("heartbeat failed; other replicas may count this worker as gone", zap.Error(err))
		}
		return late
	}
	first := c.beat.Counter == 0
	c.beat, c.beatSent = b, sent
	var held []*running
	if p := c.held.Load(); p != nil {
		held = *p
	}
	if !clean {
		if !first {
			c.log.Warn("a lease of this worker was taken over its heartbeat (it stood still for lease_duration); renewing every lease on its own until each is confirmed")
		}
		for _, r := range held {
			r.fence.Unvouch()
		}
		return late
	}
	if c.vouching.Load() {
		for _, r := range held {
			if r.held.Owned() && r.held.caughtUp() {
				r.fence.Vouch(sent)
			}
		}
	}
	return late
}
