package checkpoint

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// The plan: which leases one worker resumes, takes, asks for, steals and hands over in one round.
// Pure functions of the lease table as listed, with table tests; the Coordinator carries them out.

// maxWantsPerRound bounds the leases one worker asks for in one round: a newcomer converges in a few
// rounds, and several newcomers asking the same loaded worker at once overshoot by little.
const maxWantsPerRound = 2

// planInput is one worker's view of one round, as plan needs it. Every field comes from the round's
// List of the lease table, judged by this worker's Tracker, plus what the worker runs.
type planInput struct {
	Me string
	// Leases are the leases of the stream being read, as listed this round.
	Leases []Lease
	// Ready are the shards that may be read now: unfinished, parents finished (shards.Lineage).
	Ready map[string]bool
	// Expired are the leases whose counter stood still for lease_duration (Tracker).
	Expired map[string]bool
	// Live are the workers whose heartbeat moved within lease_duration; Me counts as live anyway.
	Live []string
	// Running are the shards this worker runs, the ones draining for a handoff included.
	Running map[string]bool
	// Overdue are the leases this worker asked for (wanted_by = Me) over lease_duration ago.
	Overdue map[string]bool
	// MaxWants bounds Want.
	MaxWants int
}

// handoff is a running lease to drain and hand over to the worker that asked for it.
type handoff struct {
	ShardID, To string
}

// leasePlan is what one worker does in one round. Every worker computes it from the same table, so
// the fleet converges without a central coordinator.
type leasePlan struct {
	// Workers is how many workers share the shards; Target, ceil(active leases / Workers), is this
	// worker's fair share.
	Workers, Target int
	// Handoff are running leases another live worker asked for: finish the batches in flight,
	// checkpoint, and hand them over (Held.Handoff).
	Handoff []handoff
	// Resume are leases the table gives this worker that it does not run (handed over to it, or its
	// shard worker ended): take them (Store.Take) and run them.
	Resume []Lease
	// Take are free and expired leases, best first; take up to TakeUpTo of them, going down the list
	// when another worker was faster.
	Take     []Lease
	TakeUpTo int
	// Want are leases of the most loaded worker to ask for (Store.Want), when nothing is free.
	Want []Lease
	// Steal are leases asked for over lease_duration ago whose owner still runs them: take them over
	// (Store.Take on the observed counter), which fences the owner.
	Steal []Lease
}

// plan decides one round of balancing. It is pure: the lease table in, the moves out.
//
// Active leases are the unfinished ones whose shard is ready. They are shared among the live
// workers, minus the owners of expired leases (a worker whose leases expire is not doing its share,
// whatever its heartbeat says, and its leases are up for grabs). A worker's load counts its active
// leases, with each pending request counted for the requester rather than the owner, so that a
// request already made is not made twice.
//
// Hysteresis keeps leases from bouncing: a worker takes or asks only while its load is below Target,
// asks only when nothing is free or expired, asks only the most loaded live worker, and only when
// that worker has at least two leases more than it; it asks for at most min(MaxWants, Target - load,
// (victim - load) / 2). Each completed move then lowers the sum of squared loads, so the moves stop,
// at loads that differ by at most one.
func plan(in planInput) leasePlan {
	live := liveWorkers(in)
	active := activeLeases(in)
	p := leasePlan{Workers: len(live)}
	p.Target = (len(active) + p.Workers - 1) / p.Workers
	pending := func(l Lease) bool {
		return l.WantedBy != "" && l.WantedBy != l.Owner && live[l.WantedBy] && live[l.Owner]
	}
	free := func(l Lease) bool {
		return l.Owner == "" || (in.Expired[l.ShardID] && l.Owner != in.Me)
	}
	load := map[string]int{}
	for _, l := range active {
		switch {
		case free(l):
		case pending(l):
			load[l.WantedBy]++
		default:
			load[l.Owner]++
		}
	}
	mine := load[in.Me]

	for _, l := range active {
		switch {
		case l.Owner == in.Me && in.Running[l.ShardID] && pending(l):
			p.Handoff = append(p.Handoff, handoff{ShardID: l.ShardID, To: l.WantedBy})
		case l.Owner == in.Me && !in.Running[l.ShardID]:
			p.Resume = append(p.Resume, l)
		case l.Owner != in.Me && free(l):
			p.Take = append(p.Take, l)
		case l.WantedBy == in.Me && pending(l) && in.Overdue[l.ShardID] && mine <= p.Target:
			p.Steal = append(p.Steal, l)
		}
	}
	if mine >= p.Target {
		p.Take = nil
		return p
	}
	p.TakeUpTo = p.Target - mine
	if len(p.Take) > 0 {
		return p
	}

	victim := mostLoaded(live, load, in.Me)
	if victim == "" || load[victim]-mine < 2 {
		return p
	}
	n := min(in.MaxWants, p.Target-mine, (load[victim]-mine)/2)
	for _, l := range active {
		if len(p.Want) == n {
			break
		}
		if l.Owner == victim && !free(l) && !pending(l) {
			p.Want = append(p.Want, l)
		}
	}
	return p
}

// liveWorkers are the workers that share the shards: Me, the live ones, minus the owners of expired
// leases.
func liveWorkers(in planInput) map[string]bool {
	live := map[string]bool{in.Me: true}
	for _, w := range in.Live {
		live[w] = true
	}
	for _, l := range in.Leases {
		if in.Expired[l.ShardID] && l.Owner != in.Me {
			delete(live, l.Owner)
		}
	}
	return live
}

// activeLeases are the unfinished leases whose shard is ready, in a fixed order per worker, different
// between workers, so that they seldom race for the same lease.
func activeLeases(in planInput) []Lease {
	type ranked struct {
		rank  uint64
		lease Lease
	}
	var order []ranked
	for _, l := range in.Leases {
		if !l.Finished && in.Ready[l.ShardID] {
			h := fnv.New64a()
			h.Write([]byte(in.Me))
			h.Write([]byte{0})
			h.Write([]byte(l.ShardID))
			order = append(order, ranked{h.Sum64(), l})
		}
	}
	slices.SortFunc(order, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.lease.ShardID, b.lease.ShardID))
	})
	active := make([]Lease, len(order))
	for i, r := range order {
		active[i] = r.lease
	}
	return active
}

// mostLoaded is the live worker other than me with the highest load (ties: the smallest ID); "" when
// there is none.
func mostLoaded(live map[string]bool, load map[string]int, me string) string {
	victim := ""
	for w := range live {
		if w != me && (victim == "" || load[w] > load[victim] || (load[w] == load[victim] && w < victim)) {
			victim = w
		}
	}
	return victim
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
