package checkpoint

import (
	"testing"
	"time"
)

// TestFenceTrustUnderRequest: once a List showed a request for the lease, renewals by the
// coordinator extend no trust (the requester may take the lease lease_duration after asking, however
// often the owner renews): each call renews first, and must write by that renewal plus trust. A List
// showing the request gone restores the renewals' trust.
func TestFenceTrustUnderRequest(t *testing.T) {
	s := newStore(t, nil)
	const trust, margin = 2 * time.Second, 250 * time.Millisecond
	held := took(t, s, created(t, s, Lease{ShardID: "shard-0"}), "me")
	counter := func() int64 { return mustGet(t, s, "shard-0").Counter }
	t0 := time.Now()
	now := t0
	f := NewFence(held, trust, margin, func() time.Time { return now })
	f.Confirm(t0)
	if d, owned, err := f.Check(t.Context()); err != nil || !owned || !d.Equal(t0.Add(trust)) {
		t.Fatalf("Check() = %v, %v, %v, want a deadline of the confirmation plus trust", d, owned, err)
	}
	f.Contest(true)
	for round := range 3 {
		now = now.Add(time.Millisecond)
		f.Confirm(now) // the coordinator keeps renewing
		before := counter()
		d, owned, err := f.Check(t.Context())
		if err != nil || !owned || !d.Equal(now.Add(trust)) {
			t.Fatalf("round %d: Check() under a request = %v, %v, %v, want a deadline %s after now", round, d, owned, err, trust)
		}
		if got := counter(); got != before+1 {
			t.Fatalf("round %d: lease counter %d -> %d, want a renewal of the call's own", round, before, got)
		}
	}
	f.Contest(false)
	before := counter()
	if _, owned, err := f.Check(t.Context()); err != nil || !owned || counter() != before {
		t.Fatalf("Check() after the request went = %v, %v with counter %d -> %d, want the renewals' confirmation trusted",
			owned, err, before, counter())
	}
}
