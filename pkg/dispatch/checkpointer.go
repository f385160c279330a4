package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrCheckpointRefused marks a checkpoint write that can never succeed: the lease table refused it
// because the lease is no longer this worker's (the condition on owner and counter failed), or it
// refused the value. A CheckpointFunc wraps it into such errors; every other error is retried.
var ErrCheckpointRefused = errors.New("checkpoint refused")

// checkpointer writes checkpoints in the background so that the dispatch loop keeps reading and
// filtering while a write is in flight. Writes are coalesced: while one write is in flight only the
// newest checkpoint is kept, so the table's write load follows completed batches, with at most one
// write in flight per shard.
//
// A failed write is retried in place, with backoff, for as long as ctx lives: a throttled, slow or
// unreachable lease table delays the shard (no new batch starts while a checkpoint is pending) but
// never tears it down, which would read it again from the old checkpoint and deliver the batches
// since then again, every time the table refuses a few writes in a row. Before each retry a newer
// queued checkpoint takes the place of the failed one. Only a refused write (ErrCheckpointRefused)
// or the end of ctx stops it; then nothing more is written.
type checkpointer struct {
	write   CheckpointFunc
	backoff func(attempt int) time.Duration
	log     *zap.Logger
	ctx     context.Context
	next    chan string // capacity 1: the newest checkpoint not yet written
	wrote   chan string // each checkpoint written, for the loop (which must keep receiving)
	failed  chan error  // the write that ended the checkpointer: refused, or ctx ended
	wg      sync.WaitGroup
	once    sync.Once
	err     error
}

func newCheckpointer(ctx context.Context, write CheckpointFunc, backoff func(int) time.Duration, log *zap.Logger) *checkpointer {
	c := &checkpointer{write: write, backoff: backoff, log: log, ctx: ctx,
		next: make(chan string, 1), wrote: make(chan string, 1), failed: make(chan error, 1)}
	c.wg.Add(1)
	go c.loop()
	return c
}

func (c *checkpointer) loop() {
	defer c.wg.Done()
	for seq := range c.next {
		if c.err != nil {
			continue // drain after a failure; nothing more is written
		}
		seq, err := c.writeRetrying(seq)
		if err != nil {
			c.err = err
			c.failed <- err
			continue
		}
		// Tell the loop, replacing an older notice it has not read yet.
		select {
		case c.wrote <- seq:
		default:
			select {
			case <-c.wrote:
			default:
			}
			select {
			case c.wrote <- seq:
			default:
			}
		}
	}
}

// writeRetrying writes seq, or a newer checkpoint queued while it retries, until a write succeeds
// (it returns the checkpoint written), is refused, or ctx ends.
func (c *checkpointer) writeRetrying(seq string) (string, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for attempt := 1; ; attempt++ {
		err := c.write(c.ctx, seq)
		switch {
		case err == nil:
			return seq, nil
		case c.ctx.Err() != nil:
			return seq, fmt.Errorf("checkpoint %s not written: %w (last attempt: %v)", seq, c.ctx.Err(), err)
		case errors.Is(err, ErrCheckpointRefused):
			return seq, err
		}
		wait := c.backoff(attempt)
		c.log.Warn("checkpoint write failed; retrying, and no new batch starts meanwhile",
			zap.String("sequence_number", seq), zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-c.ctx.Done():
			return seq, fmt.Errorf("checkpoint %s not written: %w (last attempt: %v)", seq, c.ctx.Err(), err)
		}
		select {
		case newer, ok := <-c.next:
			if ok {
				seq = newer
			}
		default:
		}
	}
}

// set queues seq as the newest checkpoint, replacing one not yet written. Only one goroutine calls set.
func (c *checkpointer) set(seq string) {
	select {
	case c.next <- seq:
		return
	default:
	}
	select {
	case <-c.next: // replaced by the newer one
	default:
	}
	c.next <- seq
}

// close writes what is queued, waits, and returns the error that ended the checkpointer, if any.
// Safe to call twice.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.next)
		c.wg.Wait()
	})
	return c.err
}
