package pipeline

import (
	"context"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/wait"
)

// Pause (poller pause and resume) is the pipeline's control item in the lease table, read at each
// round: so every replica honours it within one renew_interval, with no restart. While paused the
// shard workers are stopped gracefully (the batches in flight finish and are checkpointed: no
// GetRecords after), and the coordinator keeps and renews their leases and moves none
// (checkpoint.Coordinator.SetPaused). On resume its next Balance starts them again from their
// checkpoints.

// control reads the pipeline's control item and applies it. A failed read keeps the last state: a
// table that cannot be read does not start or stop anything.
func (p *Pipeline) control(ctx context.Context, st *state) {
	ctl, err := p.Store.Control(ctx, p.Name)
	if err != nil {
		p.Log.Warn("reading the pipeline's control item failed; keeping its paused state", zap.Bool("paused", st.paused), zap.Error(err))
		return
	}
	if ctl.Paused != st.paused || !st.controlRead {
		if ctl.Paused {
			p.Log.Info("pipeline paused: finishing the batches in flight, then no more reads; leases are kept")
		} else if st.controlRead {
			p.Log.Info("pipeline resumed: reading from the checkpoints")
		}
		st.paused, st.controlRead = ctl.Paused, true
		st.coord.SetPaused(ctl.Paused)
		p.hooks.OnPipelinePaused(ctl.Paused)
	}
	if st.paused {
		for _, w := range st.running {
			if !wait.Closed(w.stop) {
				close(w.stop)
			}
		}
	}
}
