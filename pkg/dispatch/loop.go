package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/progress"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// loop is the state of one Run, owned by Run's goroutine. Each pass of Run starts the batches its
// lanes may start, then waits for one event: a page, a finished delivery, a checkpoint written or
// refused, stop, ctx, or a batching window's end.
type loop struct {
	d      *Dispatcher
	hooks  Hooks
	ctx    context.Context // canceled when a checkpoint is refused
	cancel context.CancelFunc
	stop   <-chan struct{} // the caller's stop, which deliveries keep
	lanes  []lane
	done   chan completion // capacity len(lanes): a lane has one batch in flight at most

	progress progress.Tracker
	age      progress.Age
	kept     arena // the kept JSON of queued records (see keepJSONMax)
	ck       *progress.Checkpointer
	// written follows the last checkpoint written, which lags behind progress's while a write is in
	// flight, and each lane's batches it has not passed: the repeat bound (see Dispatcher) counts
	// from it, not from progress's checkpoint.
	written written

	inflight int // batches being delivered
	queued   int // records waiting in lanes
	// Reading pauses while too much is held: queued records (memory for their images), and
	// records the checkpoint has not passed. The second bound matters with filters: while a batch
	// is stuck (a failing sink, a poison record), filtered-out records behind it are done but
	// cannot be passed, and without a bound a shard's whole backlog would pile up in progress.
	maxQueued, maxPending int

	ended    bool  // the End page arrived, or the reader ended without one
	stopping bool  // no batch starts any more; Run returns once none is in flight
	err      error // why Run stops, first reason first

	// tumbler carries the tumbling window (Dispatcher.Tumbling); nil without one. lastRead is when
	// the newest page came back, which says when a window's records have all been read.
	tumbler  *tumbler
	lastRead time.Time
	backoff  func(attempt int) time.Duration

	timer *time.Timer // the earliest batching window's end
	// stopSel and ctxDone are stop and ctx.Done() until each fired: a closed channel stays ready.
	stopSel, ctxDone <-chan struct{}
}

// completion is a delivery that returned.
type completion struct {
	lane  int
	ids   []int64
	sizes []int // the records' event JSON sizes, for Memory
	err   error
}

func (d *Dispatcher) newLoop(ctx context.Context, cancel context.CancelFunc, stop <-chan struct{}) *loop {
	n := d.laneCount()
	backoff := d.CheckpointBackoff
	if backoff == nil {
		backoff = defaultCheckpointBackoff
	}
	maxQueued := d.BatchSize*n + 1000
	return &loop{
		d: d, hooks: d.hooks(), ctx: ctx, cancel: cancel, stop: stop,
		lanes: make([]lane, n), done: make(chan completion, n),
		ck:        progress.NewCheckpointer(ctx, d.Checkpoint, backoff, d.Log),
		maxQueued: maxQueued, maxPending: max(4*maxQueued, 20_000), backoff: backoff,
		timer: wait.NewTimer(), stopSel: stop, ctxDone: ctx.Done(),
	}
}

// close ends the checkpointer (Run's last checkpoint is written first) and the timer.
func (l *loop) close() {
	l.ck.Close()
	l.timer.Stop()
}

// startBatches starts a batch on every lane that may start one now (see hold and the repeat
// bound), and returns when the earliest batching window still open ends (zero: none is).
func (l *loop) startBatches(now time.Time) (wake time.Time) {
	if l.stopping {
		return time.Time{}
	}
	memFull := l.d.Memory != nil && l.d.Memory.Full()
	for i := range l.lanes {
		ln := &l.lanes[i]
		room := laneRoom(l.d.BatchSize, l.progress.SentBy(i), l.written.batches(i))
		if ln.busy || len(ln.queue) == 0 || room == 0 {
			continue
		}
		if hold, deadline := l.d.hold(ln, memFull, l.ended, now); hold {
			if wake.IsZero() || deadline.Before(wake) {
				wake = deadline
			}
			continue
		}
		l.start(i, room)
	}
	l.finalIfDue()
	return wake
}

// finalIfDue starts the open tumbling window's final call once a read that came back after the
// window's end (and windowSettle) left nothing of it queued. A shard that ended closes its window
// in over instead.
func (l *loop) finalIfDue() {
	ln := &l.lanes[0]
	if l.tumbler == nil || l.ended || ln.busy || len(ln.queue) > 0 || !l.tumbler.due(l.lastRead) {
		return
	}
	l.startFinal(false)
}

// startFinal makes the open window's final call on lane 0, reported on l.done like a batch.
func (l *loop) startFinal(early bool) {
	l.lanes[0].busy = true
	l.inflight++
	go func() {
		err := l.tumbler.final(l.ctx, l.stop, early)
		l.done <- completion{lane: 0, err: err}
	}()
}

// start cuts a batch of at most room records off lane i and delivers it in a goroutine, which
// reports on l.done.
func (l *loop) start(i, room int) {
	b, ids, sizes := l.d.cut(&l.lanes[i], room)
	for _, id := range ids {
		l.progress.Sent(id, i)
	}
	l.written.sent(i, ids[len(ids)-1])
	l.queued -= len(ids)
	l.lanes[i].busy = true
	l.inflight++
	deliver := l.d.Deliver
	if l.tumbler != nil {
		deliver = l.tumbler.deliver
	}
	go func(b sinks.Batch) {
		err := deliver(l.ctx, l.stop, b)
		l.done <- completion{lane: i, ids: ids, sizes: sizes, err: err}
	}(b)
}

// over reports whether Run is over, and what it returns: once no batch is in flight, after a stop
// (ErrStopped, or the first error), or once the shard ended and every record is checkpointed.
func (l *loop) over() (bool, error) {
	if l.inflight > 0 {
		return false, nil
	}
	if l.stopping {
		if err := l.ck.Close(); err != nil {
			l.fail(err)
		}
		return true, cmp.Or(l.err, ErrStopped)
	}
	if l.ended && l.progress.Pending() == 0 {
		if _, open := l.tumbler.openWindow(); open {
			// The shard ended: its open window ends now, early, as in Lambda.
			l.startFinal(true)
			return false, nil
		}
		return true, l.ck.Close()
	}
	return false, nil
}

// step waits for the next event and handles it. Pages are taken only while reading may go on; the
// timer runs only while a batching window is open (wake).
func (l *loop) step(pages <-chan shards.Page, wake time.Time) {
	var in <-chan shards.Page
	if !l.ended && !l.stopping && l.queued < l.maxQueued && l.progress.Pending() < l.maxPending {
		in = pages
	}
	var tick <-chan time.Time
	if !wake.IsZero() {
		l.timer.Reset(time.Until(wake))
		tick = l.timer.C
	}
	defer l.timer.Stop()
	select {
	case p, ok := <-in:
		l.page(p, ok)
	case c := <-l.done:
		l.completed(c)
	case seq := <-l.ck.Wrote():
		l.hooks.OnCheckpointWritten(l.d.ShardID, seq)
		l.written.wrote(seq)
	case err := <-l.ck.Failed():
		// A checkpoint was refused (lease lost), or ctx ended while it was retried: stop
		// delivering for this shard now.
		l.cancel()
		l.stopping = true
		l.fail(err)
	case <-l.stopSel:
		l.stopping = true
		l.stopSel = nil
	case <-l.ctxDone:
		l.stopping = true
		l.ctxDone = nil
		l.fail(l.ctx.Err())
	case <-tick:
	}
}

// page takes a page from the reader (ok false: the reader ended).
func (l *loop) page(p shards.Page, ok bool) {
	if !ok {
		// The reader ended without an End page: the shard is gone from the stream (the reader's
		// only other way out is ctx, seen in step). What was read is delivered, as after an End
		// page; dropping it would lose records of a shard marked finished.
		l.ended = true
		return
	}
	l.lastRead = p.ReadAt
	l.queued += l.accept(p)
	if l.d.Memory != nil {
		// The reader's estimate for the page gives way to the queued records' sizes (accept
		// charged them).
		l.d.Memory.Release(p.Bytes)
	}
	l.ended = p.End
	l.advance()
}

// completed takes a finished delivery. One that gave up (stop or ctx) did only the records it
// reports done, and stops the loop taking work.
func (l *loop) completed(c completion) {
	l.inflight--
	l.lanes[c.lane].busy = false
	if c.err == nil {
		l.markDone(c.ids, c.sizes)
		return
	}
	if inc, ok := errors.AsType[*failure.IncompleteError](c.err); ok {
		n := min(inc.Done, len(c.ids))
		l.markDone(c.ids[:n], c.sizes[:n])
	}
	l.stopping = true
	if l.ctx.Err() == nil && !wait.Closed(l.stop) {
		l.fail(fmt.Errorf("deliver batch of shard %s: %w", l.d.ShardID, c.err))
	}
}

// markDone marks the records of ids done, gives back their memory, and moves the checkpoint.
func (l *loop) markDone(ids []int64, sizes []int) {
	for _, id := range ids {
		l.progress.Done(id)
	}
	l.d.release(sizes)
	l.advance()
}

// advance passes the done prefix and, if the checkpoint moved, hands it to the checkpointer: the
// one place a checkpoint is set, and becomes unwritten until the checkpointer reports it written.
func (l *loop) advance() {
	if seq, moved := l.progress.Advance(); moved {
		l.ck.Set(seq)
		l.written.set(seq, l.progress.PassedEnd())
	}
}

// fail records err as why Run stops, unless an earlier reason was recorded.
func (l *loop) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// reportAge tells the hooks the shard's iterator age mark, if it changed.
func (l *loop) reportAge() {
	if m, changed := l.age.Mark(&l.progress); changed {
		l.hooks.OnIteratorAge(l.d.ShardID, m)
	}
}
