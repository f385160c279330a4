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
