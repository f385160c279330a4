package shards

import (
	"testing"
	"time"
)

func TestPollWait(t *testing.T) {
	const poll, idle = 250 * time.Millisecond, time.Second
	tests := []struct {
		name       string
		poll, idle time.Duration
		empty      int
		want       time.Duration
	}{
		{"a page with records is followed by poll_interval", poll, idle, 0, poll},
		{"the first empty pages keep poll_interval", poll, idle, 1, poll},
		{"the last empty page before the back-off keeps poll_interval", poll, idle, idleAfter, poll},
		{"one more empty page doubles the wait", poll, idle, idleAfter + 1, 2 * poll},
		{"two more reach idle_poll_interval", poll, idle, idleAfter + 2, idle},
		{"a long quiet stays at idle_poll_interval", poll, idle, 1_000_000, idle},
		{"doubling never passes idle_poll_interval", poll, 700 * time.Millisecond, idleAfter + 2, 700 * time.Millisecond},
		{"idle_poll_interval 0 keeps poll_interval however long the quiet", poll, 0, 1_000_000, poll},
		{"idle_poll_interval equal to poll_interval keeps it", poll, poll, 1_000_000, poll},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pollWait(tc.poll, tc.idle, tc.empty); got != tc.want {
				t.Errorf("pollWait(%v, %v, %d) = %v, want %v", tc.poll, tc.idle, tc.empty, got, tc.want)
			}
		})
	}
}

func TestRandomStaggerSpreadsOverThePollInterval(t *testing.T) {
	const poll = 250 * time.Millisecond
	var lower, upper int // draws in the interval's first and second half
	for range 1000 {
		d := RandomStagger(poll)
		if d < 0 || d >= poll {
			t.Fatalf("RandomStagger(%v) = %v, want [0, %v)", poll, d, poll)
		}
		if d < poll/2 {
			lower++
		} else {
			upper++
		}
	}
	// Each half gets 500 of 1,000 draws on average; below 350 is a 1-in-10^20 event for a uniform draw.
	if lower < 350 || upper < 350 {
		t.Errorf("RandomStagger put %d draws in the first half of the interval and %d in the second, want an even spread", lower, upper)
	}
	if d := RandomStagger(0); d != 0 {
		t.Errorf("RandomStagger(0) = %v, want 0", d)
	}
}
