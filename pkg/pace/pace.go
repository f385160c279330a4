// Package pace lets a process's lease rounds slow its shard readers down when they cannot keep up.
//
// A process reads every shard it holds every poll_interval and renews every lease it holds within a
// lease_duration, on the same cores. When the cores cannot do both (thousands of shards on a small
// machine), something must give, and it must not be the renewals: a lease that is not renewed is
// taken by another replica, and its shard is read twice. A Governor is told after every renewal round
// whether the round kept up; while rounds fall behind it stretches every reader's wait after a page
// that was not full (up to a bound), and it eases back to the configured cadence once they are no
// longer behind. A busy shard is not slowed down by it: a full page is followed by the next call at once.
//
// Only a process short of CPU is slowed down: a round that fell behind because the lease table is
// slow or throttled (its goroutines waited on the network, not for a core) leaves the pace alone,
// since polling less would not help it and would only delay records.
package pace

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Growth and decay of the stretch: doubled after a round that fell behind, so that a process out of
// CPU frees it within a few rounds; eased by a tenth after a round that did not, so that it finds
// the cadence the process affords without swinging between the bound and none.
const (
	grow = 2.0
	ease = 0.9
)

// Governor is the process's pace, shared by its pipelines: their coordinators report each renewal
// round (Round) and their readers stretch their waits by it (Stretch). Safe for concurrent use. A
// nil Governor never stretches and ignores rounds; the zero value is not usable (New).
type Governor struct {
	mu      sync.Mutex    // serialises Round
	factor  atomic.Uint64 // math.Float64bits of the stretch: read lock-free by every reader's wait
	limit   float64
	changed func(factor float64)
	starved func() bool
}

// New returns a Governor that stretches waits at most limit times (limit >= 1; 1 never stretches).
// changed, if not nil, is told each new factor (a metric), under the Governor's lock: it must not
// call back. starved says whether the process was short of CPU since it was last asked (nil:
// NewScheduler().Starved); a round behind while it was not does not stretch the waits.
func New(limit float64, changed func(factor float64), starved func() bool) *Governor {
	if starved == nil {
		starved = NewScheduler().Starved
	}
	g := &Governor{limit: max(limit, 1), changed: changed, starved: starved}
	g.factor.Store(math.Float64bits(1))
	if changed != nil {
		changed(1)
	}
	return g
}

// MaxStretchedWait bounds a stretched wait: however far the factor goes, a shard is polled at least
// this often (a longer wait, an idle_poll_interval of 10 s say, is kept as it is).
const MaxStretchedWait = 8 * time.Second

// Stretch returns wait stretched by the current factor, at most MaxStretchedWait (or wait, if
// longer): wait itself while the rounds keep up.
func (g *Governor) Stretch(wait time.Duration) time.Duration {
	if g == nil {
		return wait
	}
	return max(wait, min(time.Duration(float64(wait)*g.Factor()), MaxStretchedWait))
}

// Factor is the current stretch: 1 at the configured cadence, up to the limit.
func (g *Governor) Factor() float64 { return math.Float64frombits(g.factor.Load()) }

// Round is told how a renewal round went: behind, a lease's renewals are running out of chances (it
// went unconfirmed for half a lease_duration). A round behind while the process was short of CPU
// stretches the waits; a round behind on a process with CPU to spare leaves them as they are
// (polling less would not help: the lease table is what holds the renewals up); a round not behind
// eases them, since nothing is at risk. Every round asks starved, so that each look covers the time
// since the last round of any pipeline.
func (g *Governor) Round(behind bool) {
	if g == nil {
		return
	}
	starved := g.starved()
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.Factor()
	switch {
	case behind && starved:
		f = min(f*grow, g.limit)
	case !behind:
		f = max(f*ease, 1)
		if f < 1.05 {
			f = 1
		}
	}
	if f != g.Factor() {
		g.factor.Store(math.Float64bits(f))
		if g.changed != nil {
			g.changed(f)
		}
	}
}
