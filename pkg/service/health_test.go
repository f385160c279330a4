package service

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/server"
)

func TestReadinessFollowsTheLeaseRounds(t *testing.T) {
	ready := &server.Readiness{}
	ready.Set(false, "starting")
	h := newHealth(ready, time.Minute, time.Now)
	// /readyz answers 200 or 503 with the reason from this Readiness (see pkg/server).
	probe := func() (int, string) {
		ok, reason := ready.State()
		if !ok {
			return 503, reason
		}
		return 200, reason
	}
	a, b := h.pipeline("a").OnLeaseRound, h.pipeline("b").OnLeaseRound
	steps := []struct {
		name       string
		do         func()
		wantStatus int
		wantReason string
	}{
		{name: "before the pipelines start it is starting", do: func() {}, wantStatus: 503, wantReason: "starting"},
		{name: "started, but no round yet", do: func() { h.started(2) }, wantStatus: 503, wantReason: "starting pipelines"},
		{name: "one of two pipelines reached the table", do: func() { a(nil) }, wantStatus: 503, wantReason: "starting pipelines"},
		{name: "both reached the table: ready", do: func() { b(nil) }, wantStatus: 200, wantReason: "ready"},
		{name: "a round that cannot reach the table makes it not ready", do: func() { b(errors.New("connection refused")) }, wantStatus: 503, wantReason: "pipeline b: lease table unreachable: connection refused"},
		{name: "the next good round makes it ready again", do: func() { b(nil) }, wantStatus: 200, wantReason: "ready"},
		{name: "shutting down is not ready, whatever the rounds say", do: func() { h.stopping(); a(nil) }, wantStatus: 503, wantReason: "shutting down"},
	}
	for _, s := range steps {
		s.do()
		status, reason := probe()
		if status != s.wantStatus || !strings.Contains(reason, s.wantReason) {
			t.Errorf("%s: /readyz = %d %q, want %d %q", s.name, status, reason, s.wantStatus, s.wantReason)
		}
	}
}

// manualClock is a clock a test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *manualClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestLivenessFailsForAPipelineWithoutALeaseRoundFor3LeaseDurations: /healthz fails once a
// pipeline has completed no lease round (reached the table) for 3 x lease_duration since the start
// or its last completed round, and passes again with the next completed round; not before the
// pipelines start, nor while shutting down.
func TestLivenessFailsForAPipelineWithoutALeaseRoundFor3LeaseDurations(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h := newHealth(&server.Readiness{}, 10*time.Second, clock.now)
	a, b := h.pipeline("a").OnLeaseRound, h.pipeline("b").OnLeaseRound
	unreachable := errors.New("connection refused")
	steps := []struct {
		name     string
		do       func()
		wantFail string // "" for healthy
	}{
		{name: "before the pipelines start, waiting long for the table is alive", do: func() { clock.add(time.Hour) }},
		{name: "started, no round yet, within the limit", do: func() { h.started(2); clock.add(30 * time.Second) }},
		{name: "a pipeline with no round for over 3 lease durations since the start is wedged",
			do: func() { a(nil); clock.add(time.Second) }, wantFail: "pipeline b: wedged"},
		{name: "its first completed round makes it alive", do: func() { b(nil) }},
		{name: "rounds that fail do not count as completed",
			do: func() {
				clock.add(20 * time.Second)
				a(nil)
				b(unreachable)
				clock.add(11 * time.Second)
				a(nil)
				b(unreachable)
			}, wantFail: "pipeline b: wedged: no lease round completed for 31s"},
		{name: "exactly 3 lease durations after a completed round is still alive", do: func() { b(nil); a(nil); clock.add(30 * time.Second) }},
		{name: "just past it is wedged", do: func() { clock.add(time.Second) }, wantFail: "pipeline a: wedged"},
		{name: "shutting down is alive whatever the rounds say", do: func() { h.stopping(); clock.add(time.Hour) }},
	}
	for _, s := range steps {
		s.do()
		err := h.live()
		switch {
		case s.wantFail == "" && err != nil:
			t.Errorf("%s: live() = %v, want nil", s.name, err)
		case s.wantFail != "" && (err == nil || !strings.Contains(err.Error(), s.wantFail)):
			t.Errorf("%s: live() = %v, want an error with %q", s.name, err, s.wantFail)
		}
	}
}
