package checkpoint

import "sync"

// Fleet is one process's view of the load of all its pipelines, shared by their Coordinators, so that
// the fair share is computed over the whole lease table the process reads rather than per pipeline:
// three replicas running six one-shard pipelines hold two each, not 4/2/0 as six separate fair shares
// of ceil(1/3) = 1 would have it.
//
// Each Coordinator plans its round under the Fleet's lock, with the sum of the other pipelines'
// shares as of their last rounds, and leaves its own share (its listing's loads, with the round's
// takes and requests counted as done) for the others: the pipelines of one process never ask for
// the same lease twice or overshoot the share between them. Nothing is written to the lease table for
// it: every process counts from the listings of the pipelines it runs, so replicas that run the same
// pipelines count the same. The zero value is not usable; NewFleet. Safe for concurrent use.
type Fleet struct {
	mu sync.Mutex
	// joined are the pipelines whose Coordinator exists; shares their shares as of their last round.
	joined map[string]bool
	shares map[string]share
}

// NewFleet returns an empty Fleet: one per process, given to every Coordinator (CoordinatorConfig.Fleet).
func NewFleet() *Fleet { return &Fleet{joined: map[string]bool{}, shares: map[string]share{}} }

// join counts pipeline as one of the process's: until it planned a round, the others ask for nothing
// (see plan), since this process may hold leases of it that they would not count.
func (f *Fleet) join(pipeline string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined[pipeline] = true
}

// plan runs fn, the plan of one round of pipeline, with the sum of the other pipelines' shares and
// whether some joined pipeline has not planned yet, and records the plan's share as pipeline's. Plans
// of the process's pipelines run one at a time.
func (f *Fleet) plan(pipeline string, fn func(elsewhere share, partial bool) leasePlan) leasePlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	var elsewhere share
	for p, s := range f.shares {
		if p != pipeline {
			elsewhere = elsewhere.add(s)
		}
	}
	partial := false
	for p := range f.joined {
		_, planned := f.shares[p]
		partial = partial || (p != pipeline && !planned)
	}
	pl := fn(elsewhere, partial)
	f.shares[pipeline] = pl.Share
	return pl
}

// adjust adds delta to worker's load in pipeline's share: a take or a request the plan counted as
// done failed.
func (f *Fleet) adjust(pipeline, worker string, delta int) {
	if delta == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.shares[pipeline]; ok {
		s.Load[worker] += delta
	}
}

// forget drops pipeline's share: it stopped, and holds nothing.
func (f *Fleet) forget(pipeline string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.shares, pipeline)
	delete(f.joined, pipeline)
}
