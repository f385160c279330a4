package checkpoint

import (
	"time"
)

// RenewalHooks is the optional part of a Coordinator's Hooks that is told how each round of Renew
// went (*hooks.Set implements it): how long renewing every lease held took, and how many renewals
// failed or timed out. A round that grows towards lease_duration/2 with the number of leases, or
// failures at rest, are what put leases at risk of being taken by another replica.
type RenewalHooks interface {
	OnLeaseRenewals(took time.Duration, failed int)
}

// observeRenewals reports a Renew round that began at start to the hooks, if they want it.
func (c *Coordinator) observeRenewals(start time.Time, failed int) {
	if h, ok := c.hooks.(RenewalHooks); ok {
		h.OnLeaseRenewals(c.now().Sub(start), failed)
	}
}

// Pace is told after each renewal round whether the round kept up with the leases held; *pace.Governor
// satisfies it. A process whose rounds fall behind polls its shards less often until they keep up
// again: renewals come before the polling cadence.
type Pace interface {
	// Round: behind, the longest unconfirmed lease due went unconfirmed for over half a
	// lease_duration (its renewals are running out of chances; Renew warns of it too). A round that
	// merely could not start every renewal due within its budget is not behind: the rest go first at
	// the next round, with chances to spare.
	Round(behind bool)
}
