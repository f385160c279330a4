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
