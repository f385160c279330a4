// Package control is the operator's side of the lease table: what `poller status`, `pause`,
// `resume` and `reset` read and write. It talks to the lease table alone, never to the replicas:
// they read the pipeline's control item at each lease round (see package checkpoint) and report
// their shards' iterator age with their lease writes.
package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
)

// Table is the part of the lease table the commands use; *checkpoint.Store satisfies it.
type Table interface {
	List(ctx context.Context, pipeline string) ([]checkpoint.Lease, []checkpoint.Worker, error)
	Control(ctx context.Context, pipeline string) (checkpoint.Control, error)
	SetPaused(ctx context.Context, pipeline string, paused bool) (checkpoint.Control, error)
	Reset(ctx context.Context, l checkpoint.Lease, startAt string, at time.Time) (checkpoint.Lease, bool, error)
}

var _ Table = (*checkpoint.Store)(nil)

// ErrRefused is a request refused for a stated reason (reset on a running pipeline, an unknown
// shard): the command line's exit 2. Any other error is the lease table's (exit 1).
var ErrRefused = errors.New("refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// SetPaused pauses (or resumes) pipeline: every replica honours it at its next lease round.
func SetPaused(ctx context.Context, t Table, pipeline string, paused bool) error {
	_, err := t.SetPaused(ctx, pipeline, paused)
	return err
}
