package checkpoint

import "time"

// Tracker judges expiry the way the lease table's rules require: on the observer's own monotonic
// clock, by how long a counter has stood still, never by comparing wall-clock times written by other
// machines. Feed it every List of one pipeline, with now from time.Now() (which carries the monotonic
// reading). It is pure (no clock, no I/O), keeps one entry per item of the last List, and is not safe
// for concurrent use: one Tracker per pipeline, owned by the one that lists (a Coordinator).
//
// A counter first seen, or seen to change, starts a lease_duration wait, so a worker that just started
// waits a full lease_duration before it takes any owned lease.
type Tracker struct {
	leaseDuration time.Duration
	seen          map[string]sighting
	// next is when the first owned, unfinished lease of the last Observe that has not expired yet
	// expires if its counter stands still; zero when there is none.
	next time.Time
	// stranded are the Stranded leases of the last Observe, by shard.
	stranded map[string]bool
}

// sighting is when a counter value was first seen.
type sighting struct {
	counter int64
	since   time.Time
}

// View is what one List says once judged.
type View struct {
	// Expired are the owned, unfinished leases whose counter has not moved for lease_duration (nor
	// their owner's heartbeat, for an owner that vouches for its leases): they may be taken with Take
	// (their Counter and OwnerBeat are the ones observed). Free leases are never listed here; they may
	// be taken at once.
	Expired []Lease
	// Stranded are the free, unfinished leases whose counter has not moved for lease_duration: no
	// worker below its fair share took them (see planInput.Stranded).
	Stranded []Lease
	// Live are the workers whose heartbeat counter moved within lease_duration (or that were first seen
	// less than lease_duration ago); Dead are the others, whose items DeleteWorker may remove.
	Live, Dead []Worker
}

// NewTracker returns a Tracker for leases and heartbeats expiring after leaseDuration (> 0).
func NewTracker(leaseDuration time.Duration) *Tracker {
	return &Tracker{leaseDuration: leaseDuration, seen: map[string]sighting{}}
}

// Observe records one List (leases and workers of one pipeline) taken at now, and returns which
// leases have expired and which workers are alive. Items missing from the List are forgotten.
//
// An owned lease has expired once its counter stood still for lease_duration, and, when its owner's
// item vouches for its leases (Worker.Vouches), once the owner's heartbeat counter stood still for
// lease_duration as well: such a lease is listed with OwnerBeat, the counter to take it over (Take).
func (t *Tracker) Observe(now time.Time, leases []Lease, workers []Worker) View {
	seen := make(map[string]sighting, len(leases)+len(workers))
	// since records c under key and returns since when it has stood still.
	since := func(key string, c int64) time.Time {
		s, ok := t.seen[key]
		if !ok || s.counter != c {
			s = sighting{counter: c, since: now}
		}
		seen[key] = s
		return s.since
	}
	var v View
	// vouching are the workers whose heartbeat keeps their leases, with when it last moved.
	vouching := make(map[string]sighting, len(workers))
	for _, w := range workers {
		at := since(workerKey(w.ID), w.Counter)
		if now.Sub(at) >= t.leaseDuration {
			v.Dead = append(v.Dead, w)
		} else {
			v.Live = append(v.Live, w)
		}
		if w.Vouches() {
			vouching[w.ID] = sighting{counter: w.Counter, since: at}
		}
	}
	t.next = time.Time{}
	for _, l := range leases {
		still := since(leaseKey(l.ShardID), l.Counter)
		if l.Finished {
			continue
		}
		if l.Owner == "" {
			if now.Sub(still) >= t.leaseDuration {
				v.Stranded = append(v.Stranded, l)
			}
			continue
		}
		l.OwnerBeat = 0
		if b, ok := vouching[l.Owner]; ok {
			still, l.OwnerBeat = later(still, b.since), b.counter
		}
		if at := still.Add(t.leaseDuration); !now.Before(at) {
			v.Expired = append(v.Expired, l)
		} else if t.next.IsZero() || at.Before(t.next) {
			t.next = at
		}
	}
	t.seen = seen
	t.stranded = make(map[string]bool, len(v.Stranded))
	for _, l := range v.Stranded {
		t.stranded[l.ShardID] = true
	}
	return v
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// NextExpiry returns when the first lease of the last Observe that is owned, unfinished and not
// expired yet will have expired if its counter does not move: the time to List again so that a dead
// owner's leases are taken as soon as they may be, rather than up to a renew_interval later. Zero when
// there is no such lease.
func (t *Tracker) NextExpiry() time.Time { return t.next }
