package checkpoint

import (
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
)

func TestRenewAge(t *testing.T) {
	tests := []struct {
		lease, renew, want time.Duration
	}{
		{10 * time.Second, 2 * time.Second, 2333333333}, // the defaults: every other round
		{30 * time.Second, 2 * time.Second, 9 * time.Second},
		{6 * time.Second, 2 * time.Second, 1500 * time.Millisecond}, // under four rounds: every round
		{3 * time.Second, 2 * time.Second, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		c := NewCoordinator(CoordinatorConfig{Pipeline: pipe, WorkerID: "me", LeaseDuration: tc.lease, RenewInterval: tc.renew})
		if got := c.renewAge(); got != tc.want {
			t.Errorf("renewAge() at lease_duration %v, renew_interval %v = %v, want %v", tc.lease, tc.renew, got, tc.want)
		}
	}
}

// TestIdleLeasesAreRenewedEveryOtherRoundAtTheDefaults: at lease_duration 10 s and renew_interval
// 2 s a lease nobody writes is renewed at ages 4, 8, ... s, half the writes of renewing it each round,
// and always well within its lease_duration.
func TestIdleLeasesAreRenewedEveryOtherRoundAtTheDefaults(t *testing.T) {
	t.Parallel()
	calls := &counting{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { calls.DynamoAPI = api; return calls })
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	c, _ := holdingWith(t, s, 3, CoordinatorConfig{LeaseDuration: 10 * time.Second, RenewInterval: 2 * time.Second, Clock: clock.Now})
	calls.take()
	for round, want := range []int{0, 3, 0, 3, 0, 3} {
		clock.Advance(2 * time.Second)
		if lost := c.Renew(t.Context()); len(lost) != 0 {
			t.Fatalf("round %d: Renew() lost %v", round+1, lost)
		}
		if got := calls.take()["UpdateItem"]; got != want {
			t.Errorf("round %d (%v after the take): %d renewals, want %d", round+1, time.Duration(round+1)*2*time.Second, got, want)
		}
	}
}

// paceSeen records what a Coordinator told its Pace.
type paceSeen struct{ behind []bool }

func (p *paceSeen) Round(behind bool) { p.behind = append(p.behind, behind) }

// TestRenewTellsThePaceHowTheRoundWent: a round that renews what is due in time is not behind; one
// that finds a lease unconfirmed for over half a lease_duration is.
func TestRenewTellsThePaceHowTheRoundWent(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	p := &paceSeen{}
	c, _ := holdingWith(t, s, 2, CoordinatorConfig{LeaseDuration: 8 * time.Second, RenewInterval: 2 * time.Second, Clock: clock.Now, Pace: p})
	clock.Advance(2 * time.Second)
	c.Renew(t.Context())
	clock.Advance(c.leaseDuration/2 + time.Millisecond)
	c.Renew(t.Context())
	if want := []bool{false, true}; len(p.behind) != 2 || p.behind[0] != want[0] || p.behind[1] != want[1] {
		t.Fatalf("Pace told behind = %v, want %v", p.behind, want)
	}
}
