package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// WindowState is a shard's tumbling window as the dispatcher keeps it between calls and stores it
// (WindowStore): the window it is in and the state its last successful call answered.
type WindowState struct {
	// Start is the window's start; zero when the shard has had no window yet.
	Start time.Time
	// State is what the window's last successful call answered.
	State map[string]string
	// Through is the sequence number of the last record State covers: after a restart or handoff
	// the records up to it, which the checkpoint may not have passed yet, are not delivered again,
	// so that no record is counted twice in a window's state.
	Through string
	// Closed says the window's final call succeeded: the next record opens a new window.
	Closed bool
}

// WindowStore keeps each shard's tumbling window across restarts and handoffs (in poller, an item
// of the lease table next to the shard's lease).
type WindowStore interface {
	// LoadWindow returns the shard's stored window; the zero WindowState when there is none.
	LoadWindow(ctx context.Context, shardID string) (WindowState, error)
	// SaveWindow stores the shard's window, replacing what was stored.
	SaveWindow(ctx context.Context, shardID string, w WindowState) error
}

// FinalFunc makes one sink call (in poller, the shard's fenced sink): the final call of a window.
type FinalFunc func(ctx context.Context, b sinks.Batch) error

// windowSettle is how long after a window's end a read must have come back, with nothing of the
// window queued, before the window's final call is made: time for a record written just before
// the end to reach the stream.
const windowSettle = time.Second

// windowStart is the start of the window of length size that t falls in, aligned to the Unix epoch
// as Lambda aligns its windows.
func windowStart(t time.Time, size time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, ns-ns%int64(size)).UTC()
}

// recordWindow is the start of the window a record belongs to, by its ApproximateCreationDateTime.
func recordWindow(r *events.DynamoDBEventRecord, size time.Duration) time.Time {
	return windowStart(r.Change.ApproximateCreationDateTime.Time, size)
}

// windowCut is how many records at the head of recs share the first one's window: a batch never
// spans two windows.
func windowCut(recs []item, n int, size time.Duration) int {
	if size <= 0 || n == 0 {
		return n
	}
	first := recordWindow(&recs[0].rec, size)
	for i := 1; i < n; i++ {
		if !recordWindow(&recs[i].rec, size).Equal(first) {
			return i
		}
	}
	return n
}

// tumbler carries a shard's tumbling window between calls. Deliveries run on their own goroutine,
// one at a time (a window needs one lane); the loop reads the window through due, hence the mutex.
type tumbler struct {
	d       *Dispatcher
	backoff func(attempt int) time.Duration
	mu      sync.Mutex
	w       WindowState
}

func newTumbler(ctx context.Context, d *Dispatcher, backoff func(int) time.Duration) (*tumbler, error) {
	t := &tumbler{d: d, backoff: backoff}
	if d.Windows == nil {
		return t, nil
	}
	w, err := d.Windows.LoadWindow(ctx, d.ShardID)
	if err != nil {
		return nil, fmt.Errorf("load tumbling window of shard %s: %w", d.ShardID, err)
	}
	t.w = w
	return t, nil
}

// openWindow reports the shard's open window, if one is (started and not closed); none on a nil
// tumbler.
func (t *tumbler) openWindow() (WindowState, bool) {
	if t == nil {
		return WindowState{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w, !t.w.Start.IsZero() && !t.w.Closed
}

// due reports whether the open window's final call is due after a read that came back at readAt
// with nothing of the window queued.
func (t *tumbler) due(readAt time.Time) bool {
	w, ok := t.openWindow()
	return ok && !readAt.Before(w.Start.Add(t.d.Tumbling).Add(windowSettle))
}

// deliver delivers b, whose records share one window, in that window: the open window's final
// call comes first when b is in another one; b carries the window's state, and the state answered
// is kept and stored with the last record it covers. Records the stored state already covers are
// skipped (done).
func (t *tumbler) deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
	cur, isOpen := t.openWindow()
	skip := 0
	for skip < len(b.Records) && compareSeq(b.Records[skip].Change.SequenceNumber, cur.Through) <= 0 {
		skip++
	}
	if skip == len(b.Records) {
		return nil
	}
	b = b.Slice(skip, len(b.Records))
	start := recordWindow(&b.Records[0], t.d.Tumbling)
	if isOpen && !cur.Start.Equal(start) {
		if err := t.final(ctx, stop, false); err != nil {
			return doneBefore(skip, err)
		}
		cur.Closed = true
	}
	if cur.Start.IsZero() || cur.Closed || !cur.Start.Equal(start) {
		cur = WindowState{Start: start, State: map[string]string{}, Through: cur.Through}
	}
	w := &sinks.Window{Start: start, End: start.Add(t.d.Tumbling), State: maps.Clone(cur.State)}
	b.Window = w
	err := t.d.Deliver(ctx, stop, b)
	if done := doneCount(err, len(b.Records)); done > 0 {
		cur.State, cur.Through = w.State, b.Records[done-1].Change.SequenceNumber
		if serr := t.save(ctx, stop, cur); serr != nil {
			return doneBefore(skip, serr)
		}
	}
	return doneBefore(skip, err)
}

// final makes the open window's final call, again until it succeeds (Lambda holds the shard until
// it does), then stores the window closed. early marks a window closed by its shard's end.
func (t *tumbler) final(ctx context.Context, stop <-chan struct{}, early bool) error {
	cur, ok := t.openWindow()
	if !ok {
		return nil
	}
	d := t.d
	err := wait.Retry(ctx, stop, t.backoff, func(attempt int) error {
		w := &sinks.Window{Start: cur.Start, End: cur.Start.Add(d.Tumbling), State: maps.Clone(cur.State), Final: true, TerminatedEarly: early}
		b := sinks.Batch{Pipeline: d.Pipeline, StreamARN: d.StreamARN, ShardID: d.ShardID, HashKey: d.HashKey,
			Records: []events.DynamoDBEventRecord{}, Window: w}
		err := d.Final(ctx, b)
		if err != nil {
			d.Log.Warn("final call of a tumbling window failed; retrying")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("final call of window %s of shard %s: %w", cur.Start.Format(time.RFC3339), d.ShardID, err)
	}
	cur.Closed = true
	cur.State = nil
	return t.save(ctx, stop, cur)
}

// save keeps w as the shard's window and stores it, again until it is stored (the state must not
// fall behind the checkpoint) or the shard stops.
func (t *tumbler) save(ctx context.Context, stop <-chan struct{}, w WindowState) error {
	t.mu.Lock()
	t.w = w
	t.mu.Unlock()
	if t.d.Windows == nil {
		return nil
	}
	err := wait.Retry(ctx, stop, t.backoff, func(int) error {
		return t.d.Windows.SaveWindow(ctx, t.d.ShardID, w)
	})
	if err != nil {
		return fmt.Errorf("store tumbling window of shard %s: %w", t.d.ShardID, err)
	}
	return nil
}

// doneCount is how many records of a batch of n a delivery that returned err did.
func doneCount(err error, n int) int {
	if err == nil {
		return n
	}
	if inc, ok := errors.AsType[*failure.IncompleteError](err); ok {
		return min(inc.Done, n)
	}
	return 0
}

// doneBefore adds the skip records skipped before a delivery to what it reports done.
func doneBefore(skip int, err error) error {
	if err == nil || skip == 0 {
		return err
	}
	if inc, ok := errors.AsType[*failure.IncompleteError](err); ok {
		return &failure.IncompleteError{Done: inc.Done + skip, Err: inc.Err}
	}
	return &failure.IncompleteError{Done: skip, Err: err}
}

// compareSeq compares two sequence numbers as the decimal integers they are; "" is below any.
func compareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
