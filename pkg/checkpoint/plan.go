package checkpoint

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// The plan: which leases one worker resumes, takes, asks for, steals and hands over in one round.
// Pure functions of the lease table as listed, with table tests; the Coordinator carries them out.

// maxWantsPerRound bounds the leases one worker asks for in one round, at small fair shares: a
// newcomer converges in a few rounds, and several newcomers asking the same loaded worker at once
// overshoot by little. At large fair shares a worker asks for up to an eighth of its share a round
// (wantShare): two a round would take a newcomer to a share of 2,500 leases 40 minutes.
const maxWantsPerRound = 2

// wantShare is the part of its fair share a worker may ask for in one round (1/wantShare).
const wantShare = 8

// planInput is one worker's view of one round of one pipeline, as plan needs it. Every field but
// Elsewhere comes from the round's List of the lease table, judged by this worker's Tracker, plus what
// the worker runs; Elsewhere is what the process's other pipelines counted at their last round (Fleet).
type planInput struct {
	Me string
	// Leases are the leases of the stream being read, as listed this round.
	Leases []Lease
	// Ready are the shards that may be read now: unfinished, parents finished (shards.Lineage).
	Ready map[string]bool
	// Expired are the leases whose counter stood still for lease_duration (Tracker).
	Expired map[string]bool
	// Stranded are the free leases whose counter stood still for lease_duration (Tracker): nobody
	// below its fair share took them, which happens only when replicas run different sets of
	// pipelines. Any worker takes them, whatever its share.
	Stranded map[string]bool
	// Live are the workers whose heartbeat moved within lease_duration; Me counts as live anyway.
	Live []string
	// Running are the shards this worker runs, the ones draining for a handoff included.
	Running map[string]bool
	// Overdue are the leases this worker asked for (wanted_by = Me) over lease_duration ago.
	Overdue map[string]bool
	// MaxWants bounds Want.
	MaxWants int
	// Elsewhere is the sum of the shares of the process's other pipelines (see share): the fair share
	// and every load are counted over all the pipelines this process runs. Zero for a lone pipeline.
	Elsewhere share
	// Partial: some of the process's pipelines have not planned a round yet (it just started), so
	// Elsewhere may miss leases this worker holds: it asks for nothing (it still takes free leases).
	Partial bool
}

// share is one pipeline's part of the load as one worker counted it at its last round: the unit the
// process's pipelines add up (Fleet) so that the fair share is one over all of them.
type share struct {
	// Active is the number of the pipeline's active leases (unfinished, shard ready).
	Active int
	// Load is, per worker, the active leases it holds, each pending request counted for the
	// requester, and this worker's moves of the round (takes, requests) counted as done.
	Load map[string]int
	// Live are the workers whose heartbeat moves in the pipeline; Gone the owners of its expired
	// leases, which count as workers in no pipeline (their leases are up for grabs).
	Live, Gone []string
}

// add returns s with o added: actives and loads summed, live and gone workers joined.
func (s share) add(o share) share {
	out := share{Active: s.Active + o.Active, Load: make(map[string]int, len(s.Load)+len(o.Load))}
	for _, m := range []map[string]int{s.Load, o.Load} {
		for w, n := range m {
			out.Load[w] += n
		}
	}
	out.Live = append(slices.Clone(s.Live), o.Live...)
	out.Gone = append(slices.Clone(s.Gone), o.Gone...)
	return out
}

// handoff is a running lease to drain and hand over to the worker that asked for it.
type handoff struct {
	ShardID, To string
}

// leasePlan is what one worker does in one round of one pipeline. Every worker computes it from the
// same table, so the fleet converges without a central coordinator.
type leasePlan struct {
	// Workers is how many workers share the shards of the process's pipelines; Target,
	// ceil(active leases of all of them / Workers), is this worker's fair share over all of them.
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
	// Adopt are stranded leases (planInput.Stranded): take them all, whatever the fair share.
	Adopt []Lease
	// Want are leases of the most loaded worker to ask for (Store.Want), when nothing is free.
	Want []Lease
	// Steal are leases asked for over lease_duration ago whose owner still runs them: take them over
	// (Store.Take on the observed counter), which fences the owner.
	Steal []Lease
	// Share is this pipeline's part of the load, with the plan's takes and requests counted as done:
	// what the process's other pipelines count next (Fleet). Takes that fail are taken off it.
	Share share
}

// plan decides one round of balancing of one pipeline. It is pure: the lease table in, the moves out.
//
// Active leases are the unfinished ones whose shard is ready. The active leases of every pipeline the
// process runs are shared among the workers live in any of them, minus the owners of expired leases
// (a worker whose leases expire is not doing its share, whatever its heartbeat says, and its leases
// are up for grabs). A worker's load counts its active leases in all those pipelines, with each
// pending request counted for the requester rather than the owner, so that a request already made is
// not made twice.
//
// Hysteresis keeps leases from bouncing: a worker takes or asks only while its load is below Target,
// asks only when nothing of the pipeline is free or expired, asks only the most loaded live worker
// that holds a lease of the pipeline, and only when that worker has at least two leases more than it;
// it asks for at most min(max(MaxWants, Target / 8), Target - load, (victim - load) / 2). Each completed move then
// lowers the sum of squared loads, so the moves stop, at loads that differ by at most one (where the
// pipelines each worker runs allow it). A worker knows its own load exactly, and sees another's as
// at most what it is (the pipelines it does not run are missing), so that holds even when replicas
// run different sets of pipelines.
func plan(in planInput) leasePlan {
	live := liveWorkers(in)
	active := activeLeases(in)
	p := leasePlan{Workers: len(live)}
	p.Target = (len(active) + in.Elsewhere.Active + p.Workers - 1) / p.Workers
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
	total := func(w string) int { return load[w] + in.Elsewhere.Load[w] }
	mine := total(in.Me)
	p.Share = share{Active: len(active), Load: load, Live: in.Live, Gone: expiredOwners(in)}

	for _, l := range active {
		switch {
		case l.Owner == in.Me && in.Running[l.ShardID] && pending(l):
			p.Handoff = append(p.Handoff, handoff{ShardID: l.ShardID, To: l.WantedBy})
		case l.Owner == in.Me && !in.Running[l.ShardID]:
			p.Resume = append(p.Resume, l)
		case l.Owner == "" && in.Stranded[l.ShardID]:
			p.Adopt = append(p.Adopt, l)
		case l.Owner != in.Me && free(l):
			p.Take = append(p.Take, l)
		case l.WantedBy == in.Me && pending(l) && in.Overdue[l.ShardID] && mine <= p.Target:
			p.Steal = append(p.Steal, l)
		}
	}
	mine += len(p.Adopt)
	load[in.Me] += len(p.Adopt)
	if mine >= p.Target {
		p.Take = nil
		return p
	}
	p.TakeUpTo = p.Target - mine
	if len(p.Take) > 0 {
		load[in.Me] += min(p.TakeUpTo, len(p.Take))
		return p
	}
	if in.Partial {
		return p
	}
	p.Want = wants(in, active, live, total, pending, p.Target)
	for _, l := range p.Want {
		load[in.Me]++
		load[l.Owner]--
	}
	return p
}

// wants picks the leases to ask for: of the most loaded live worker holding an askable lease of the
// pipeline, when it holds at least two more than me (loads over every pipeline: total).
func wants(in planInput, active []Lease, live map[string]bool, total func(string) int, pending func(Lease) bool, target int) []Lease {
	askable := func(l Lease) bool {
		return l.Owner != "" && l.Owner != in.Me && live[l.Owner] && !in.Expired[l.ShardID] && !pending(l)
	}
	victim := ""
	for _, l := range active {
		w := l.Owner
		if askable(l) && (victim == "" || total(w) > total(victim) || (total(w) == total(victim) && w < victim)) {
			victim = w
		}
	}
	mine := total(in.Me)
	if victim == "" || total(victim)-mine < 2 {
		return nil
	}
	n := min(max(in.MaxWants, target/wantShare), target-mine, (total(victim)-mine)/2)
	var out []Lease
	for _, l := range active {
		if len(out) == n {
			break
		}
		if l.Owner == victim && askable(l) {
			out = append(out, l)
		}
	}
	return out
}

// expiredOwners are the owners of the pipeline's expired leases other than me.
func expiredOwners(in planInput) []string {
	var out []string
	for _, l := range in.Leases {
		if in.Expired[l.ShardID] && l.Owner != "" && l.Owner != in.Me && !slices.Contains(out, l.Owner) {
			out = append(out, l.Owner)
		}
	}
	return out
}

// liveWorkers are the workers that share the shards of the process's pipelines: Me, the ones live in
// any of them, minus the owners of expired leases in any of them.
func liveWorkers(in planInput) map[string]bool {
	live := map[string]bool{in.Me: true}
	for _, w := range append(slices.Clone(in.Live), in.Elsewhere.Live...) {
		live[w] = true
	}
	for _, w := range append(expiredOwners(in), in.Elsewhere.Gone...) {
		if w != in.Me {
			delete(live, w)
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
