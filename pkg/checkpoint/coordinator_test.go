package checkpoint

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// recordedHooks records what a Coordinator tells its hooks.
type recordedHooks struct {
	owned     []int
	takeovers []string
	rounds    []error
}

func (h *recordedHooks) OnLeasesOwned(n int)       { h.owned = append(h.owned, n) }
func (h *recordedHooks) OnLeaseTakeover(id string) { h.takeovers = append(h.takeovers, id) }
func (h *recordedHooks) OnLeaseRound(err error)    { h.rounds = append(h.rounds, err) }
func (h *recordedHooks) lastOwned() int            { return h.owned[len(h.owned)-1] }
func grantIDs(gs []Grant) (out []string) {
	for _, g := range gs {
		out = append(out, g.Held.Lease().ShardID)
	}
	slices.Sort(out)
	return out
}

// TestCoordinatorRounds follows two workers' coordinators through the rounds of a pipeline with four
// shards: the first takes every lease, the second joins and asks for its share, the first drains and
// hands it over, a lease taken by a third worker is reported lost, and a graceful stop releases what
// is left.
func TestCoordinatorRounds(t *testing.T) {
	s := newStore(t, nil)
	for i := range 4 {
		created(t, s, Lease{ShardID: fmt.Sprintf("shard-%d", i)})
	}
	ctx := t.Context()
	coordinator := func(me string) (*Coordinator, *recordedHooks) {
		h := &recordedHooks{}
		return NewCoordinator(CoordinatorConfig{Store: s, Pipeline: pipe, WorkerID: me,
			LeaseDuration: time.Minute, RenewInterval: time.Second, Hooks: h}), h
	}
	round := func(c *Coordinator) Moves {
		t.Helper()
		c.Ended(ctx, nil)
		if lost := c.Renew(ctx); len(lost) > 0 {
			t.Fatalf("Renew() lost %v, want none", lost)
		}
		listing, err := c.List(ctx)
		if err != nil {
			t.Fatalf("List() = %v", err)
		}
		ready := map[string]bool{}
		for _, l := range listing.Leases {
			ready[l.ShardID] = true
		}
		return c.Balance(ctx, Scope{Leases: listing.Leases, Ready: ready})
	}

	a, ha := coordinator("a")
	m := round(a)
	if got := grantIDs(m.Start); len(got) != 4 || len(m.Drain) != 0 {
		t.Fatalf("a's first round: start %v, drain %v; want every lease started", got, m.Drain)
	}
	grants := map[string]Grant{}
	for _, g := range m.Start {
		grants[g.Held.Lease().ShardID] = g
	}
	if ha.lastOwned() != 4 || ha.rounds[len(ha.rounds)-1] != nil {
		t.Fatalf("a's hooks: owned %v, rounds %v; want 4 owned after a good round", ha.owned, ha.rounds)
	}

	b, hb := coordinator("b")
	if m := round(b); len(m.Start) != 0 {
		t.Fatalf("b's first round started %v, want nothing: every lease is a's", grantIDs(m.Start))
	}
	m = round(a)
	if len(m.Drain) != 2 || len(m.Start) != 0 || !a.Draining(m.Drain[0]) || !a.Draining(m.Drain[1]) {
		t.Fatalf("a's round after b asked: drain %v, start %v; want b's two leases drained", m.Drain, grantIDs(m.Start))
	}
	drained := slices.Sorted(slices.Values(m.Drain))
	a.Ended(ctx, []Ended{{ShardID: drained[0]}, {ShardID: drained[1]}})
	if ha.lastOwned() != 2 {
		t.Fatalf("a owns %d leases after the handoff, want 2", ha.lastOwned())
	}
	for _, id := range drained {
		if l := mustGet(t, s, id); l.Owner != "b" || l.WantedBy != "" {
			t.Fatalf("lease %s after the handoff: owner %q, wanted by %q; want b's, no request", id, l.Owner, l.WantedBy)
		}
	}
	m = round(b)
	if got := grantIDs(m.Start); !slices.Equal(got, drained) || !slices.Equal(slices.Sorted(slices.Values(hb.takeovers)), drained) {
		t.Fatalf("b's round after the handoff: start %v, takeovers %v; want the leases handed over, %v", got, hb.takeovers, drained)
	}

	// A third worker takes one of a's leases (as after a's pause): a's List contests the lease's
	// fence, which no longer lets a call out, and a's next renewal finds the lease lost.
	var mine Lease
	for i := range 4 {
		if l := mustGet(t, s, fmt.Sprintf("shard-%d", i)); l.Owner == "a" {
			mine = l
		}
	}
	took(t, s, mine, "thief")
	if _, err := a.List(ctx); err != nil {
		t.Fatalf("List() = %v", err)
	}
	if lost := a.Renew(ctx); !slices.Equal(lost, []string{mine.ShardID}) {
		t.Fatalf("a's Renew() after the take = %v, want [%s]", lost, mine.ShardID)
	}
	if _, owned, err := grants[mine.ShardID].Fence.Check(ctx); owned || err != nil {
		t.Fatalf("Check() of a lost lease = %v, %v, want not owned", owned, err)
	}

	// A graceful stop releases b's leases and removes b's heartbeat item.
	b.Leave(ctx, []Ended{{ShardID: drained[0]}, {ShardID: drained[1]}})
	for _, id := range drained {
		if l := mustGet(t, s, id); l.Owner != "" {
			t.Fatalf("lease %s after b left: owner %q, want none", id, l.Owner)
		}
	}
	if _, workers, err := s.List(ctx, pipe); err != nil || slices.ContainsFunc(workers, func(w Worker) bool { return w.ID == "b" }) {
		t.Fatalf("List() after b left = %v, %v; want no item of b", workers, err)
	}
	if hb.lastOwned() != 0 {
		t.Fatalf("b owns %d leases after it left, want 0", hb.lastOwned())
	}
}
