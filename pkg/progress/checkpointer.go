package progress

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/wait"
)

// ErrCheckpointRefused marks a checkpoint write that can never succeed: the lease table refused it
// because the lease is no longer this worker's (the condition on owner and counter failed), or it
// refused the value. A WriteFunc wraps it into such errors; every other error is retried.
var ErrCheckpointRefused = errors.New("checkpoint refused")

// WriteFunc durably records that every record of the shard up to seq is done. An error wrapping
// ErrCheckpointRefused ends the Checkpointer; any other error is retried.
type WriteFunc func(ctx context.Context, seq string) error

// Checkpointer writes a shard's checkpoints in the background, so that the dispatch loop keeps
// reading and filtering while a write is in flight. Writes are coalesced: while one write is in
// flight only the newest checkpoint is kept, so the table's write load follows completed batches,
// with at most one write in flight per shard.
//
// A failed write is retried in place, with backoff, for as long as ctx lives: a throttled, slow or
// unreachable lease table delays the shard (each of the dispatcher's lanes starts at most one more
// batch while a checkpoint is not written) but never tears it down, which would read it again from
// the old checkpoint and deliver the batches since then again, every time the table refuses a few
// writes in a row. Before
// each retry a newer queued checkpoint takes the place of the failed one. Only a refused write
// (ErrCheckpointRefused) or the end of ctx stops it; then nothing more is written.
//
// Set and Close are called by one goroutine, which must keep receiving from Wrote and Failed.
type Checkpointer struct {
	write   WriteFunc
	backoff func(attempt int) time.Duration
	log     *zap.Logger
	ctx     context.Context
	next    chan string // capacity 1: the newest checkpoint not yet written
	wrote   chan string // each checkpoint written, newest only
	failed  chan error  // the write that ended the checkpointer: refused, or ctx ended
	wg      sync.WaitGroup
	once    sync.Once
	started bool // the writing goroutine runs: from the first Set on
	err     error
}

// NewCheckpointer returns a Checkpointer that writes with write until ctx ends or Close is called.
// backoff gives the wait before retry number attempt (1, 2, ...) of a failed write. Its goroutine
// starts with the first Set: a shard that never delivers (thousands of idle shards) costs none.
func NewCheckpointer(ctx context.Context, write WriteFunc, backoff func(attempt int) time.Duration, log *zap.Logger) *Checkpointer {
	return &Checkpointer{write: write, backoff: backoff, log: log, ctx: ctx,
		next: make(chan string, 1), wrote: make(chan string, 1), failed: make(chan error, 1)}
}

// Wrote delivers each checkpoint written; a notice not yet received is replaced by a newer one.
func (c *Checkpointer) Wrote() <-chan string { return c.wrote }

// Failed delivers the error that ended the Checkpointer: a refused write (ErrCheckpointRefused), or
// ctx ended while a write was retried. Nothing is written after it.
func (c *Checkpointer) Failed() <-chan error { return c.failed }

func (c *Checkpointer) loop() {
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
		replace(c.wrote, seq)
	}
}

// writeRetrying writes seq, or a newer checkpoint queued while it retries, until a write succeeds
// (it returns the checkpoint written), is refused, or ctx ends.
func (c *Checkpointer) writeRetrying(seq string) (string, error) {
	var last error          // the last failed attempt
	var pause time.Duration // the wait after it, logged before it starts
	err := wait.Retry(c.ctx, nil, func(int) time.Duration { return pause }, func(attempt int) error {
		if attempt > 1 {
			seq = c.newest(seq)
		}
		last = c.write(c.ctx, seq)
		switch {
		case last == nil:
			return nil
		case c.ctx.Err() != nil:
			return wait.Permanent(c.ctx.Err())
		case errors.Is(last, ErrCheckpointRefused):
			return wait.Permanent(last)
		}
		pause = c.backoff(attempt)
		c.log.Warn("checkpoint write failed; retrying, and each lane starts at most one more batch meanwhile",
			zap.String("sequence_number", seq), zap.Int("attempt", attempt), zap.Duration("retry_in", pause), zap.Error(last))
		return last
	})
	if err == nil || errors.Is(err, ErrCheckpointRefused) {
		return seq, err
	}
	// ctx ended, during a write or the wait after one.
	return seq, fmt.Errorf("checkpoint %s not written: %w (last attempt: %v)", seq, err, last)
}

// newest returns a checkpoint queued since seq was, if any, else seq.
func (c *Checkpointer) newest(seq string) string {
	select {
	case newer, ok := <-c.next:
		if ok {
			return newer
		}
	default:
	}
	return seq
}

// Set queues seq as the newest checkpoint, replacing one not yet written.
func (c *Checkpointer) Set(seq string) {
	if !c.started {
		c.started = true
		c.wg.Add(1)
		go c.loop()
	}
	replace(c.next, seq)
}

// replace sends v on ch (capacity 1), replacing a value not yet received. Only one goroutine sends.
func replace[T any](ch chan T, v T) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}

// Close writes what is queued, waits for the write to end, and returns the error that ended the
// Checkpointer, if any. Safe to call twice.
func (c *Checkpointer) Close() error {
	c.once.Do(func() {
		close(c.next)
		c.wg.Wait()
	})
	return c.err
}
