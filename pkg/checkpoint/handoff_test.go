package checkpoint

import (
	"errors"
	"fmt"
	"testing"
)

// TestWant: a request to hand a lease over is written beside the lease, without touching its
// counter, and only while the lease is as the requester observed it.
func TestWant(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	tests := []struct {
		name string
		// prepare returns the lease as the requester observed it.
		prepare func(t *testing.T, shard string) Lease
		wantOK  bool
	}{
		{
			name: "a lease another worker holds is marked as wanted",
			prepare: func(t *testing.T, shard string) Lease {
				took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				return mustGet(t, s, shard)
			},
			wantOK: true,
		},
		{
			name: "a renewal since the observation does not stop the request",
			prepare: func(t *testing.T, shard string) Lease {
				h := took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				l := mustGet(t, s, shard)
				if ok, err := h.Renew(t.Context()); !ok || err != nil {
					t.Fatalf("Renew() = %v, %v", ok, err)
				}
				return l
			},
			wantOK: true,
		},
		{
			name: "a lease that changed hands since the observation is not marked",
			prepare: func(t *testing.T, shard string) Lease {
				took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				l := mustGet(t, s, shard)
				took(t, s, l, "third")
				return l
			},
		},
		{
			name: "a lease someone else asked for since the observation is not marked",
			prepare: func(t *testing.T, shard string) Lease {
				took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				l := mustGet(t, s, shard)
				if ok, err := s.Want(t.Context(), l, "third"); !ok || err != nil {
					t.Fatalf("Want() by third = %v, %v", ok, err)
				}
				return l
			},
		},
		{
			name: "a request of another worker, as observed, is replaced",
			prepare: func(t *testing.T, shard string) Lease {
				took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				if ok, err := s.Want(t.Context(), mustGet(t, s, shard), "dead-worker"); !ok || err != nil {
					t.Fatalf("Want() by dead-worker = %v, %v", ok, err)
				}
				return mustGet(t, s, shard)
			},
			wantOK: true,
		},
		{
			name: "a finished lease is not marked",
			prepare: func(t *testing.T, shard string) Lease {
				h := took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
				l := mustGet(t, s, shard)
				if ok, err := h.Finish(t.Context(), "7"); !ok || err != nil {
					t.Fatalf("Finish() = %v, %v", ok, err)
				}
				return l
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shard := fmt.Sprintf("shardId-%d", i)
			l := tt.prepare(t, shard)
			before := mustGet(t, s, shard)
			ok, err := s.Want(t.Context(), l, "me")
			if ok != tt.wantOK || err != nil {
				t.Fatalf("Want() = %v, %v, want %v, nil", ok, err, tt.wantOK)
			}
			got := mustGet(t, s, shard)
			if got.Counter != before.Counter || got.Owner != before.Owner || got.Checkpoint != before.Checkpoint {
				t.Fatalf("lease after Want() = %+v, want counter, owner and checkpoint of %+v", got, before)
			}
			if wantBy := map[bool]string{true: "me", false: before.WantedBy}[tt.wantOK]; got.WantedBy != wantBy {
				t.Fatalf("wanted_by = %q, want %q", got.WantedBy, wantBy)
			}
		})
	}

	if _, err := s.Want(t.Context(), created(t, s, Lease{ShardID: "free"}), "me"); err == nil {
		t.Fatalf("Want() of a free lease = nil, want an error: a free lease is taken, not asked for")
	}
}

// TestHandoff: the owner of a wanted lease keeps writing for it until it hands it over; the successor
// then takes it at once and resumes from the owner's last checkpoint.
func TestHandoff(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	owner := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "owner")
	if ok, err := s.Want(t.Context(), mustGet(t, s, "shardId-1"), "thief"); !ok || err != nil {
		t.Fatalf("Want() = %v, %v", ok, err)
	}
	// The request does not fence the owner: it finishes its batch in flight and checkpoints.
	if ok, err := owner.Checkpoint(t.Context(), "42"); !ok || err != nil {
		t.Fatalf("Checkpoint() of a wanted lease = %v, %v, want true, nil", ok, err)
	}
	if got := owner.Lease(); got.WantedBy != "thief" {
		t.Fatalf("Held.Lease().WantedBy = %q, want thief (written by the request, seen by the owner's writes)", got.WantedBy)
	}
	if ok, err := owner.Handoff(t.Context(), "thief"); !ok || err != nil {
		t.Fatalf("Handoff() = %v, %v, want true, nil", ok, err)
	}
	handed := mustGet(t, s, "shardId-1")
	if handed.Owner != "thief" || handed.WantedBy != "" || handed.Checkpoint != "42" || handed.Takeovers != 1 {
		t.Fatalf("handed-off lease = %+v, want owner thief, no request, checkpoint 42, one takeover", handed)
	}
	if owner.Owned() {
		t.Fatalf("Owned() = true after Handoff")
	}
	if ok, err := owner.Renew(t.Context()); ok || err != nil {
		t.Fatalf("Renew() after Handoff = %v, %v, want false, nil", ok, err)
	}
	thief := took(t, s, handed, "thief")
	if got := thief.Lease(); got.Checkpoint != "42" || got.Owner != "thief" {
		t.Fatalf("taken lease = %+v, want thief's at checkpoint 42", got)
	}
	if _, err := thief.Handoff(t.Context(), "thief"); err == nil {
		t.Fatalf("Handoff() to itself = nil, want an error")
	}
}

// TestRequestClearedWithOwnership: a request is addressed to one owner; whoever writes the lease's
// ownership next clears it.
func TestRequestClearedWithOwnership(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ends := []struct {
		name string
		end  func(t *testing.T, h *Held, shard string)
	}{
		{"a release clears the request", func(t *testing.T, h *Held, _ string) {
			if ok, err := h.Release(t.Context()); !ok || err != nil {
				t.Fatalf("Release() = %v, %v", ok, err)
			}
		}},
		{"a finish clears the request", func(t *testing.T, h *Held, _ string) {
			if ok, err := h.Finish(t.Context(), ""); !ok || err != nil {
				t.Fatalf("Finish() = %v, %v", ok, err)
			}
		}},
		{"a takeover clears the request", func(t *testing.T, _ *Held, shard string) {
			took(t, s, mustGet(t, s, shard), "third")
		}},
	}
	for i, tt := range ends {
		t.Run(tt.name, func(t *testing.T) {
			shard := fmt.Sprintf("shardId-%d", i)
			h := took(t, s, created(t, s, Lease{ShardID: shard}), "owner")
			if ok, err := s.Want(t.Context(), mustGet(t, s, shard), "thief"); !ok || err != nil {
				t.Fatalf("Want() = %v, %v", ok, err)
			}
			tt.end(t, h, shard)
			if got := mustGet(t, s, shard); got.WantedBy != "" {
				t.Fatalf("wanted_by = %q after the owner changed, want none", got.WantedBy)
			}
		})
	}
}

// TestHandoffAnswerLost: a handoff whose answer was lost, or that the SDK retried after it landed,
// is recognised as done; a handoff after a takeover is refused.
func TestHandoffAnswerLost(t *testing.T) {
	t.Parallel()
	f := &faulty{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { f.DynamoAPI = api; return f })

	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "me")
	f.inject("retried")
	if ok, err := h.Handoff(t.Context(), "thief"); !ok || err != nil {
		t.Fatalf("Handoff() retried by the SDK = %v, %v, want true, nil", ok, err)
	}

	h = took(t, s, created(t, s, Lease{ShardID: "shardId-2"}), "me")
	f.inject("lost")
	if _, err := h.Handoff(t.Context(), "thief"); !errors.Is(err, errAnswerLost) {
		t.Fatalf("Handoff() = %v, want the lost answer", err)
	}
	if ok, err := h.Handoff(t.Context(), "thief"); !ok || err != nil {
		t.Fatalf("repeated Handoff() after a lost answer = %v, %v, want true, nil", ok, err)
	}
	if got := mustGet(t, s, "shardId-2"); got.Owner != "thief" || got.Takeovers != 1 {
		t.Fatalf("lease = %+v, want thief's with one takeover", got)
	}

	h = took(t, s, created(t, s, Lease{ShardID: "shardId-3"}), "me")
	took(t, s, mustGet(t, s, "shardId-3"), "third")
	if ok, err := h.Handoff(t.Context(), "thief"); ok || err != nil {
		t.Fatalf("Handoff() of a lease taken over = %v, %v, want false, nil", ok, err)
	}
	if got := mustGet(t, s, "shardId-3"); got.Owner != "third" {
		t.Fatalf("lease owner = %q, want third", got.Owner)
	}
}
