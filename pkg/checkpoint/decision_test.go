package checkpoint

import (
	"testing"
	"time"
)

// TestPinStart: a LATEST lease's resolved start is stored by its holder only, read back by the next
// taker, never pinned twice at different records, and never once a checkpoint exists.
func TestPinStart(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	at := time.Date(2026, 11, 28, 10, 0, 0, 123, time.UTC)
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1", StartAt: StartLatest}), "a")
	if ok, err := h.PinStart(t.Context(), "", at); !ok || err != nil {
		t.Fatalf("PinStart(time) = %v, %v, want true, nil", ok, err)
	}
	if ok, err := h.PinStart(t.Context(), "100", time.Time{}); !ok || err != nil {
		t.Fatalf("PinStart(100) = %v, %v, want true, nil", ok, err)
	}
	if ok, err := h.PinStart(t.Context(), "101", time.Time{}); ok || err == nil {
		t.Errorf("PinStart(101) after 100 = %v, %v, want an error: the start is pinned once", ok, err)
	}
	got := mustGet(t, s, "shardId-1")
	if got.StartSeq != "100" || !got.StartTime.Equal(at) || got.StartAt != StartLatest {
		t.Fatalf("lease = %+v, want start_seq 100, start_time %v", got, at)
	}
	// A thief fences the holder: its pin is refused.
	thief := took(t, s, got, "b")
	if ok, err := h.PinStart(t.Context(), "100", time.Time{}); ok || err != nil {
		t.Errorf("PinStart() by the fenced holder = %v, %v, want false, nil", ok, err)
	}
	if ok, err := thief.Checkpoint(t.Context(), "120"); !ok || err != nil {
		t.Fatalf("Checkpoint() = %v, %v", ok, err)
	}
	if ok, err := thief.PinStart(t.Context(), "", at); ok || err == nil {
		t.Errorf("PinStart() after a checkpoint = %v, %v, want an error", ok, err)
	}
}

// TestDecide: the first worker's Decide creates the decision; the others get it as it is; only a
// worker that saw it stand still takes it over, and only its owner marks it done.
func TestDecide(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	d := Decision{Pipeline: "p", Position: "LATEST", Owner: "a"}
	got, created, err := s.Decide(t.Context(), d)
	if err != nil || !created || got.Owner != "a" || got.Counter != 1 || got.Done {
		t.Fatalf("first Decide() = %+v, %v, %v; want created, owner a, counter 1", got, created, err)
	}
	other, created, err := s.Decide(t.Context(), Decision{Pipeline: "p", Position: "TRIM_HORIZON", Owner: "b"})
	if err != nil || created || other != got {
		t.Fatalf("second Decide() = %+v, %v, %v; want the first decision %+v", other, created, err, got)
	}
	taken, ok, err := s.TakeDecision(t.Context(), got, "b")
	if err != nil || !ok || taken.Owner != "b" || taken.Position != "LATEST" || taken.Counter != 2 {
		t.Fatalf("TakeDecision() = %+v, %v, %v; want owner b, LATEST kept, counter 2", taken, ok, err)
	}
	if _, ok, err := s.DecisionDone(t.Context(), got); ok || err != nil {
		t.Errorf("DecisionDone() by the stalled decider = %v, %v, want false, nil", ok, err)
	}
	if _, ok, err := s.TakeDecision(t.Context(), got, "c"); ok || err != nil {
		t.Errorf("TakeDecision() on a stale counter = %v, %v, want false, nil", ok, err)
	}
	renewed, ok, err := s.RenewDecision(t.Context(), taken)
	if err != nil || !ok || renewed.Counter != 3 {
		t.Fatalf("RenewDecision() = %+v, %v, %v", renewed, ok, err)
	}
	done, ok, err := s.DecisionDone(t.Context(), renewed)
	if err != nil || !ok || !done.Done || done.Owner != "" {
		t.Fatalf("DecisionDone() = %+v, %v, %v; want done, no owner", done, ok, err)
	}
	if _, ok, err := s.TakeDecision(t.Context(), done, "c"); ok || err != nil {
		t.Errorf("TakeDecision() of a done decision = %v, %v, want false, nil", ok, err)
	}
	if got, created, err := s.Decide(t.Context(), Decision{Pipeline: "p", Position: "LATEST", Done: true}); err != nil || created || !got.Done {
		t.Errorf("Decide() after done = %+v, %v, %v; want the done decision", got, created, err)
	}
	leases, workers, err := s.List(t.Context(), "p")
	if err != nil || len(leases)+len(workers) != 0 {
		t.Errorf("List() = %v, %v, %v; the decision item is neither a lease nor a worker", leases, workers, err)
	}
}
