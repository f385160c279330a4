package dispatch

import (
	"context"
	"sync"
)

// checkpointer writes checkpoints in the background so that the dispatch loop keeps reading and
// filtering while a write is in flight. Writes are coalesced: while one write is in flight only the
// newest checkpoint is kept, so the table's write load follows completed batches, with at most one
// write in flight per shard.
type checkpointer struct {
	write  CheckpointFunc
	ctx    context.Context
	next   chan string // capacity 1: the newest checkpoint not yet written
	wrote  chan string // each checkpoint written, for the loop (which must keep receiving)
	failed chan error  // the first failed write
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newCheckpointer(ctx context.Context, write CheckpointFunc) *checkpointer {
	c := &checkpointer{write: write, ctx: ctx, next: make(chan string, 1), wrote: make(chan string, 1), failed: make(chan error, 1)}
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
		if err := c.write(c.ctx, seq); err != nil {
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

// close writes what is queued, waits, and returns the first write error. Safe to call twice.
func (c *checkpointer) close() error {
	c.once.Do(func() {
		close(c.next)
		c.wg.Wait()
	})
	return c.err
}
