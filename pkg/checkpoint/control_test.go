package checkpoint

import (
	"slices"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
)

// TestControl: a pipeline without a control item runs; pause and resume write it, and it is neither
// a lease nor a worker to List.
func TestControl(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := t.Context()
	if c, err := s.Control(ctx, pipe); err != nil || c.Paused || c.Counter != 0 {
		t.Fatalf("Control() of a new pipeline = %+v, %v, want not paused", c, err)
	}
	for i, paused := range []bool{true, true, false} {
		if c, err := s.SetPaused(ctx, pipe, paused); err != nil || c.Paused != paused || c.Counter != int64(i+1) {
			t.Fatalf("SetPaused(%v) = %+v, %v, want paused %v, counter %d", paused, c, err, paused, i+1)
		}
		if c, err := s.Control(ctx, pipe); err != nil || c.Paused != paused || c.UpdatedAt.IsZero() {
			t.Fatalf("Control() after SetPaused(%v) = %+v, %v", paused, c, err)
		}
	}
	if c, err := s.Control(ctx, "other"); err != nil || c.Paused {
		t.Fatalf("Control() of another pipeline = %+v, %v, want not paused", c, err)
	}
	leases, workers, err := s.List(ctx, pipe)
	if err != nil || len(leases) != 0 || len(workers) != 0 {
		t.Fatalf("List() = %v, %v, %v; want the control item ignored", leases, workers, err)
	}
}

// TestReset: a reset frees the lease and fences its owner (whose in-memory position must never be
// written back), clears the checkpoint, pinned start and finished flag, stores the new start, and
// loses to any write since the caller listed the lease.
func TestReset(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := t.Context()
	h := took(t, s, created(t, s, Lease{ShardID: "shard-1"}), "a")
	if ok, err := h.Checkpoint(ctx, "100"); !ok || err != nil {
		t.Fatalf("Checkpoint() = %v, %v", ok, err)
	}
	listed := mustGet(t, s, "shard-1")
	if ok, err := h.Renew(ctx); !ok || err != nil {
		t.Fatalf("Renew() = %v, %v", ok, err)
	}
	if _, ok, err := s.Reset(ctx, listed, "", time.Time{}); ok || err != nil {
		t.Fatalf("Reset() on a counter written since = %v, %v, want false, nil", ok, err)
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		startAt string
		at      time.Time
	}{
		{"to a time", StartAtTime, at},
		{"to LATEST", StartLatest, time.Time{}},
		{"to TRIM_HORIZON", "", time.Time{}},
	}
	for _, tc := range tests {
		got, ok, err := s.Reset(ctx, mustGet(t, s, "shard-1"), tc.startAt, tc.at)
		if !ok || err != nil {
			t.Fatalf("Reset(%s) = %v, %v, want true, nil", tc.name, ok, err)
		}
		if got.Owner != "" || got.Checkpoint != "" || got.Finished || got.StartAt != tc.startAt || !got.StartTime.Equal(tc.at) {
			t.Fatalf("lease after Reset(%s) = %+v, want free, no checkpoint, start_at %q at %v", tc.name, got, tc.startAt, tc.at)
		}
	}
	if ok, err := h.Checkpoint(ctx, "200"); ok || err != nil {
		t.Fatalf("the old owner's Checkpoint() after a reset = %v, %v, want false, nil: it is fenced", ok, err)
	}
	if got := mustGet(t, s, "shard-1"); got.Checkpoint != "" {
		t.Fatalf("checkpoint after the fenced write = %q, want none", got.Checkpoint)
	}
	if _, _, err := s.Reset(ctx, mustGet(t, s, "shard-1"), StartAtTime, time.Time{}); err == nil {
		t.Fatalf("Reset() to a time without one: want an error")
	}

	// A finished lease is read again after a reset.
	f := took(t, s, created(t, s, Lease{ShardID: "shard-2"}), "a")
	if ok, err := f.Finish(ctx, "300"); !ok || err != nil {
		t.Fatalf("Finish() = %v, %v", ok, err)
	}
	if got, ok, err := s.Reset(ctx, mustGet(t, s, "shard-2"), "", time.Time{}); !ok || err != nil || got.Finished || got.Checkpoint != "" {
		t.Fatalf("Reset() of a finished lease = %+v, %v, %v, want unfinished with no checkpoint", got, ok, err)
	}
}

// TestIteratorAgeIsWrittenWithLeaseWrites: the age reported by the holder is stored by its next write
// that keeps the lease, 0 once caught up, and removed when the lease is released.
func TestIteratorAgeIsWrittenWithLeaseWrites(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := t.Context()
	h := took(t, s, created(t, s, Lease{ShardID: "shard-1"}), "a")
	if ok, err := h.Renew(ctx); !ok || err != nil {
		t.Fatalf("Renew() = %v, %v", ok, err)
	}
	if got := mustGet(t, s, "shard-1"); got.AgeReported {
		t.Fatalf("lease = %+v, want no iterator age before one was reported", got)
	}
	steps := []struct {
		name  string
		since time.Time
		write func() (bool, error)
		want  time.Duration
	}{
		{"a renewal while 5 s behind", now.Add(-5 * time.Second), func() (bool, error) { return h.Renew(ctx) }, 5 * time.Second},
		{"a checkpoint while 1.5 s behind", now.Add(-1500 * time.Millisecond), func() (bool, error) { return h.Checkpoint(ctx, "100") }, 1500 * time.Millisecond},
		{"a renewal once caught up", time.Time{}, func() (bool, error) { return h.Renew(ctx) }, 0},
	}
	for _, st := range steps {
		h.ReportAge(st.since)
		if ok, err := st.write(); !ok || err != nil {
			t.Fatalf("%s: write = %v, %v", st.name, ok, err)
		}
		if got := mustGet(t, s, "shard-1"); !got.AgeReported || got.IteratorAge != st.want {
			t.Fatalf("%s: lease age = %v (reported %v), want %v", st.name, got.IteratorAge, got.AgeReported, st.want)
		}
	}
	if ok, err := h.Release(ctx); !ok || err != nil {
		t.Fatalf("Release() = %v, %v", ok, err)
	}
	if got := mustGet(t, s, "shard-1"); got.AgeReported {
		t.Fatalf("lease after release = %+v, want no iterator age: nobody reports for it", got)
	}
}

// TestPausedCoordinatorKeepsItsLeases: while paused, the leases whose workers ended stay held and
// renewed, a worker asking for its share gets nothing, and nothing is taken; on resume they start
// again, except one a reset freed, which is taken afresh from the table, never run from the
// position held in memory.
func TestPausedCoordinatorKeepsItsLeases(t *testing.T) {
	s := newStore(t, nil)
	ctx := t.Context()
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	a, grants := holding(t, s, 4, 8*time.Second, clock)
	b := NewCoordinator(CoordinatorConfig{Store: s, Pipeline: pipe, WorkerID: "b", LeaseDuration: 8 * time.Second, RenewInterval: 2 * time.Second, Clock: clock.Now})
	round := func(c *Coordinator, paused bool, ended ...Ended) ([]string, Moves) {
		t.Helper()
		c.SetPaused(paused)
		c.Ended(ctx, ended)
		lost := c.Renew(ctx)
		listing, err := c.List(ctx)
		if err != nil {
			t.Fatalf("List() = %v", err)
		}
		ready := map[string]bool{}
		for _, l := range listing.Leases {
			ready[l.ShardID] = true
		}
		return lost, c.Balance(ctx, Scope{Leases: listing.Leases, Ready: ready})
	}
	var ended []Ended
	for id := range grants {
		ended = append(ended, Ended{ShardID: id})
	}
	clock.Advance(2 * time.Second)
	if lost, m := round(a, true, ended...); len(lost) != 0 || len(m.Start) != 0 || len(m.Drain) != 0 {
		t.Fatalf("a's paused round: lost %v, moves %+v; want nothing", lost, m)
	}
	before := map[string]Lease{}
	for id := range grants {
		before[id] = mustGet(t, s, id)
	}
	for range 3 {
		clock.Advance(2 * time.Second)
		if _, m := round(b, true); len(m.Start) != 0 {
			t.Fatalf("b took %v while paused", grantIDs(m.Start))
		}
		if _, m := round(a, true); len(m.Start) != 0 || len(m.Drain) != 0 {
			t.Fatalf("a's paused round moved %+v", m)
		}
	}
	for id, l := range before {
		got := mustGet(t, s, id)
		if got.Owner != "me" || got.Counter <= l.Counter || got.WantedBy != "" {
			t.Fatalf("lease %s while paused = %+v (was %+v), want kept, renewed and not asked for", id, got, l)
		}
	}

	// A reset frees one kept lease; on resume it is not run from memory. (b leaves, so that a's fair
	// share is every lease.)
	b.Leave(ctx, nil)
	reset, _, err := s.Reset(ctx, mustGet(t, s, "shard-000"), "", time.Time{})
	if err != nil {
		t.Fatalf("Reset() = %v", err)
	}
	clock.Advance(2 * time.Second)
	lost, m := round(a, false)
	if !slices.Equal(lost, []string{"shard-000"}) {
		t.Fatalf("resume round lost %v, want the reset lease", lost)
	}
	started := grantIDs(m.Start)
	if !slices.Equal(started, []string{"shard-000", "shard-001", "shard-002", "shard-003"}) {
		t.Fatalf("resume round started %v, want every lease: the kept ones and the reset one taken afresh", started)
	}
	for _, g := range m.Start {
		if l := g.Held.Lease(); l.ShardID == "shard-000" && (l.Counter != reset.Counter+1 || l.Checkpoint != "") {
			t.Fatalf("the reset lease restarted as %+v, want the table's (reset at counter %d)", l, reset.Counter)
		}
	}
}
