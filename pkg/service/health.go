package service

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/server"
)

// health derives /readyz from the pipelines' lease rounds: ready once every pipeline's last round
// reached the lease table, not ready while any pipeline's last round failed, and not ready again
// from the start of a shutdown on.
type health struct {
	ready  *server.Readiness
	mu     sync.Mutex
	want   int              // pipelines started; 0 until then
	done   bool             // shutting down
	rounds map[string]error // pipeline -> its last round's error
}

func newHealth(ready *server.Readiness) *health {
	return &health{ready: ready, rounds: map[string]error{}}
}

// pipeline returns the hook that tells h each lease round's outcome of one pipeline.
func (h *health) pipeline(name string) hooks.HookLeaseRound { return leaseRounds{h, name} }

// leaseRounds records a pipeline's lease rounds in its health.
type leaseRounds struct {
	h        *health
	pipeline string
}

func (r leaseRounds) OnLeaseRound(err error) {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.h.rounds[r.pipeline] = err
	r.h.update()
}

func (h *health) started(pipelines int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.want = pipelines
	h.update()
}

func (h *health) stopping() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	h.update()
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
