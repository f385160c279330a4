package service

import (
	"errors"
	"strings"
	"testing"

	"github.com/poller-dev/poller/pkg/server"
)

func TestReadinessFollowsTheLeaseRounds(t *testing.T) {
	ready := &server.Readiness{}
	ready.Set(false, "starting")
	h := &health{ready: ready, rounds: map[string]error{}}
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
