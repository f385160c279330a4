package wait_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/wait"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
		attempts  int
	}{
		{"backoff doubles from base each attempt and stays capped at max", 100 * time.Millisecond, 10 * time.Second, 20},
		{"a base above the cap gives the cap", time.Minute, time.Second, 3},
		{"a cap near the largest duration does not overflow", time.Second, math.MaxInt64, 100},
		{"a zero base never waits", 0, time.Second, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := wait.Backoff(tc.base, tc.max)
			for a := 1; a <= tc.attempts; a++ {
				d := min(tc.max, tc.base)
				for i := 1; i < a && d < tc.max; i++ {
					d = min(tc.max, d*2)
					if d < 0 { // the expectation's own overflow
						d = tc.max
					}
				}
				for range 200 {
					if got := b(a); got < d/2 || got > d {
						t.Fatalf("Backoff(%v, %v)(%d) = %v, want within [%v, %v]", tc.base, tc.max, a, got, d/2, d)
					}
				}
			}
		})
	}
	t.Run("retries throttled together spread out instead of retrying in step", func(t *testing.T) {
		b := wait.Backoff(100*time.Millisecond, time.Second)
		seen := map[time.Duration]bool{}
		for range 100 {
			seen[b(3)] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(100ms, 1s)(3) gave %d distinct waits in 100, want jitter", len(seen))
		}
	})
}

func TestUntil(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		stop <-chan struct{}
		d    time.Duration
		want error
	}{
		{"a wait nothing interrupts passes", context.Background(), nil, time.Millisecond, nil},
		{"a closed stop ends the wait with ErrStopped", context.Background(), closed, time.Hour, wait.ErrStopped},
		{"a done context ends the wait with its error", canceled, nil, time.Hour, context.Canceled},
		{"a zero wait on a closed stop reports the stop", context.Background(), closed, 0, wait.ErrStopped},
		{"a zero wait on a done context reports it", canceled, closed, 0, context.Canceled},
		{"a zero wait with nothing closed passes at once", context.Background(), make(chan struct{}), 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, timer := range []*time.Timer{nil, wait.NewTimer()} {
				if got := wait.Until(tc.ctx, tc.stop, timer, tc.d); got != tc.want {
					t.Errorf("Until(%v) = %v, want %v", tc.d, got, tc.want)
				}
			}
		})
	}
}

func TestSleep(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if !wait.Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep(live ctx) = false, want true")
	}
	if wait.Sleep(canceled, time.Hour) {
		t.Error("Sleep(canceled ctx) = true, want false")
	}
}

func TestClosed(t *testing.T) {
	open, done := make(chan struct{}), make(chan struct{})
	close(done)
	for _, tc := range []struct {
		name string
		c    <-chan struct{}
		want bool
	}{{"an open channel is not closed", open, false}, {"a closed channel is", done, true}, {"a nil channel never closes", nil, false}} {
		if got := wait.Closed(tc.c); got != tc.want {
			t.Errorf("%s: Closed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRetry(t *testing.T) {
	boom, fatal := errors.New("boom"), errors.New("fatal")
	closed := make(chan struct{})
	close(closed)
	noWait := func(int) time.Duration { return 0 }
	tests := []struct {
		name      string
		stop      <-chan struct{}
		failures  int   // attempts that fail with boom before the outcome
		outcome   error // what the attempt after them returns (Permanent(fatal) or nil)
		want      error
		wantTries int
	}{
		{"a first success is one attempt", nil, 0, nil, nil, 1},
		{"failures are retried until a success", nil, 3, nil, nil, 4},
		{"a permanent error ends the retries with that error", nil, 2, wait.Permanent(fatal), fatal, 3},
		{"a closed stop ends the retries after the failed attempt", closed, 1, nil, wait.ErrStopped, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tries := 0
			got := wait.Retry(context.Background(), tc.stop, noWait, func(attempt int) error {
				tries++
				if attempt != tries {
					t.Fatalf("attempt = %d, want %d", attempt, tries)
				}
				if attempt <= tc.failures {
					return boom
				}
				return tc.outcome
			})
			if got != tc.want || tries != tc.wantTries {
				t.Errorf("Retry() = %v after %d tries, want %v after %d", got, tries, tc.want, tc.wantTries)
			}
		})
	}
}
