package shards

import (
	"math/rand/v2"
	"time"
)

// idleAfter is how many empty polls in a row a shard makes at PollInterval before it backs off
// toward IdlePollInterval: a shard that is merely between two writes keeps Lambda's cadence, and
// only one that stayed quiet for about a second (at 250 ms) slows down.
const idleAfter = 3

// pollWait is the wait before the next GetRecords call after a page that was not full, when empty
// pages in a row (the last one included; 0 after a page with records) came back. It is poll until
// idleAfter empty pages, then doubles with each further empty page up to idle; idle at or below
// poll (0: off) keeps poll always. The first page with records resets empty, so the next wait is
// poll again.
func pollWait(poll, idle time.Duration, empty int) time.Duration {
	if idle <= poll || empty <= idleAfter {
		return poll
	}
	d := poll
	for i := idleAfter; i < empty && d < idle; i++ {
		d *= 2
	}
	return min(d, idle)
}

// RandomStagger is a Reader.Stagger that spreads readers evenly over the poll interval: a uniform
// random wait in [0, poll).
func RandomStagger(poll time.Duration) time.Duration {
	if poll <= 0 {
		return 0
	}
	return rand.N(poll)
}
