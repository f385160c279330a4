package service

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/server"
)

// wedgeRounds is how many lease_durations a pipeline may go without completing a lease round before
// /healthz calls the process wedged. By then every lease it held has expired for the other
// replicas, so a restart loses nothing the process still does.
const wedgeRounds = 3

// health derives /readyz and /healthz from the pipelines' lease rounds.
//
// Readiness: ready once every pipeline's last round reached the lease table, not ready while any
// pipeline's last round failed, and not ready again from the start of a shutdown on.
//
// Liveness: from the start of the pipelines until a shutdown begins, every pipeline must complete a
// lease round (reach the table and balance) at least every wedgeRounds x lease_duration; else the
// process is wedged (a stuck loop, or a table it cannot reach for that long).
type health struct {
	ready *server.Readiness
	// now is the clock liveness is judged by; wedgeAfter is wedgeRounds x lease_duration. Both are
	// immutable.
	now        func() time.Time
	wedgeAfter time.Duration

	mu        sync.Mutex
	want      int                  // pipelines started; 0 until then
	done      bool                 // shutting down
	rounds    map[string]error     // pipeline -> its last round's error
	names     []string             // every pipeline given a hook, in order
	startedAt time.Time            // when the pipelines started
	completed map[string]time.Time // pipeline -> when its last round completed
}

func newHealth(ready *server.Readiness, leaseDuration time.Duration, now func() time.Time) *health {
	return &health{ready: ready, now: now, wedgeAfter: wedgeRounds * leaseDuration,
		rounds: map[string]error{}, completed: map[string]time.Time{}}
}

// pipeline returns the hook that tells h each lease round's outcome of one pipeline; liveness
// watches every pipeline given one.
func (h *health) pipeline(name string) hooks.HookLeaseRound {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = append(h.names, name)
	return leaseRounds{h, name}
}

// leaseRounds records a pipeline's lease rounds in its health.
type leaseRounds struct {
	h        *health
	pipeline string
}

func (r leaseRounds) OnLeaseRound(err error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.rounds[r.pipeline] = err
	if err == nil {
		r.h.completed[r.pipeline] = r.h.now()
	}
	r.h.update()
}

func (h *health) started(pipelines int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.want = pipelines
	h.startedAt = h.now()
	h.update()
}

func (h *health) stopping() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	h.update()
}

// live is /healthz: nil while no pipeline is wedged. Before the pipelines start (the lease table is
// awaited, which readiness reports) and while shutting down (a drain takes its time) it is nil.
func (h *health) live() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.want == 0 || h.done {
		return nil
	}
	now := h.now()
	for _, p := range h.names {
		last, ok := h.completed[p]
		if !ok {
			last = h.startedAt
		}
		if since := now.Sub(last); since > h.wedgeAfter {
			return fmt.Errorf("pipeline %s: wedged: no lease round completed for %s (limit %d x lease_duration = %s)",
				p, since.Round(time.Second), wedgeRounds, h.wedgeAfter)
		}
	}
	return nil
}

// update sets readiness; h.mu is held.
func (h *health) update() {
	switch {
	case h.done:
		h.ready.Set(false, "shutting down")
		return
	case h.want == 0:
		return // still starting; the reason stays as set
	}
	for _, p := range slices.Sorted(maps.Keys(h.rounds)) {
		if err := h.rounds[p]; err != nil {
			h.ready.Set(false, fmt.Sprintf("pipeline %s: lease table unreachable: %v", p, err))
			return
		}
	}
	if len(h.rounds) < h.want {
		h.ready.Set(false, "starting pipelines")
		return
	}
	h.ready.Set(true, "ready")
}
