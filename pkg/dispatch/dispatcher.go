// Package dispatch turns the pages of one shard into sink batches and checkpoints: it filters records,
// spreads them over lanes by partition key (parallelization_factor), cuts batches by count, batching
// window and event size, hands each batch to a delivery policy, and checkpoints the contiguous prefix
// of records that are done.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// Matcher selects the records to deliver (the pipeline's filters).
type Matcher interface {
	Match(r *events.DynamoDBEventRecord) bool
}

// DeliverFunc delivers one batch under the pipeline's failure policy. It returns nil once every
// record of the batch is done (delivered, or discarded to on_failure); any error means it gave up
// without finishing (ctx canceled, or stop closed between attempts): then only the first Done records
// of an *IncompleteError are done, and nothing else of the batch may be checkpointed.
type DeliverFunc func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error

// CheckpointFunc durably records that every record up to seq is done. An error wrapping
// ErrCheckpointRefused stops the shard (a lost lease must not keep delivering); any other error is
// retried with CheckpointBackoff while ctx lives, and no new batch starts meanwhile.
type CheckpointFunc func(ctx context.Context, seq string) error

// Counters are the dispatcher's metrics, already labelled with the pipeline.
type Counters struct {
	Polled      func(n int)
	FilteredOut func(n int)
	Malformed   func(n int)
	// Age is set to the creation time the shard's iterator age is measured from: the oldest record
	// read and not yet done; with every record done, the newest read; zero when caught up (see
	// ageMark). Called when it changes.
	Age func(t time.Time)
}

// Memory is the part of a shard's byte budget the dispatcher uses; *membudget.Account satisfies it.
type Memory interface {
	Charge(n int64)
	Release(n int64)
	// Full reports that the shard may read no more until some of what it holds is released.
	Full() bool
}

// Dispatcher handles one shard. Its fields are immutable once Run starts.
//
// Invariant (the repeat bound): a lane starts a batch only while no checkpoint write is pending and
// only while the records it handed to the sink that the checkpoint has not passed, plus the new
// batch, are at most BatchSize. So at any moment at most BatchSize x Lanes records beyond the last
// checkpoint written have been sent (in flight, or done behind a slower lane): what a kill -9 can
// deliver again. This never deadlocks: the lane that holds the oldest record not done has sent
// nothing the checkpoint has not passed (its earlier records precede that record), so it can always
// start.
type Dispatcher struct {
	Pipeline  string
	StreamARN string
	ShardID   string
	// BatchSize is the most records in one sink call (1..10000).
	BatchSize int
	// Window is max_batching_window: how long a lane waits to fill a batch. 0 sends what is read at once.
	Window time.Duration
	// Lanes is parallelization_factor: batches of one shard in flight at once, each lane keeping the
	// records of its partition keys in order. Without a HashKey there is one lane.
	Lanes int
	// MaxEventBytes caps the JSON size of one event ({"Records":[...]}), e.g. Lambda's 6 MB.
	MaxEventBytes int
	// HashKey is the table's partition key attribute, which picks a record's lane; "" (the key schema
	// is unknown) makes one lane, the only way to keep each partition key's records in order then.
	HashKey    string
	Filter     Matcher // nil delivers every record
	Deliver    DeliverFunc
	Checkpoint CheckpointFunc
	// Memory, if not nil, is the shard's byte budget, which the reader charged each page to
	// (Page.Bytes). The dispatcher gives that back once the page is converted, holds each queued
	// record at its event JSON size until the record is done, and sends what its lanes hold without
	// waiting out the batching window once the budget stops the reader.
	Memory   Memory
	Counters Counters
	Log      *zap.Logger

	// CheckpointBackoff gives the wait before retry number attempt (1, 2, ...) of a failed checkpoint
	// write; nil is defaultCheckpointBackoff.
	CheckpointBackoff func(attempt int) time.Duration
}

// item is one record waiting in a lane.
type item struct {
	rec  events.DynamoDBEventRecord
	id   int64
	size int
}

type lane struct {
	queue []item
	// bytes is the event JSON size of the queued records (records and commas, no envelope).
	bytes int
	busy  bool
	since time.Time // when the oldest queued record arrived, for the batching window
}

type completion struct {
	lane  int
	ids   []int64
	sizes []int // the records' event JSON sizes, for Memory
	err   error
}

// defaultCheckpointBackoff paces the retries of a failed checkpoint write: 100 ms doubling to 5 s,
// jittered. The cap keeps a shard that waits on a throttled lease table close behind it.
var defaultCheckpointBackoff = wait.Backoff(100*time.Millisecond, 5*time.Second)

// ErrStopped is returned by Run after a graceful stop: in-flight batches finished and were
// checkpointed, nothing else was started.
var ErrStopped = errors.New("dispatcher stopped")

// Run dispatches pages until the shard is done (the End page arrived and every record is done and
// checkpointed: it returns nil; likewise when pages is closed without an End page, the reader having
// found the shard gone), stop is closed (in-flight batches finish, their checkpoint is written, and
// it returns ErrStopped), ctx is canceled (in-flight deliveries are canceled; ctx.Err()), or a
// checkpoint is refused (deliveries are canceled; that error). A checkpoint write that fails
// otherwise is retried in place (see checkpointer). Every goroutine it starts has ended when it returns.
func (d *Dispatcher) Run(ctx context.Context, stop <-chan struct{}, pages <-chan shards.Page) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lanes := make([]lane, d.laneCount())
	done := make(chan completion, len(lanes))
	var (
		progress Progress
		// pendingCk is the newest checkpoint handed to the checkpointer and not yet known written.
		// No batch starts while one is pending, so when a batch starts the checkpoint written is
		// the one progress holds, and the repeat bound (see Dispatcher) counts from it.
		pendingCk string
		inflight  int
		queued    int
		ended     bool
		stopping  bool
		runErr    error
	)
	// Reading pauses while too much is held: queued records (memory for their images), and records
	// the checkpoint has not passed. The second bound matters with filters: while a batch is stuck
	// (a failing sink, a poison record), filtered-out records behind it are done but cannot be passed,
	// and without a bound a shard's whole backlog would pile up in Progress.
	maxQueued := d.BatchSize*len(lanes) + 1000
	maxPending := max(4*maxQueued, 20_000)
	backoff := d.CheckpointBackoff
	if backoff == nil {
		backoff = defaultCheckpointBackoff
	}
	ck := newCheckpointer(ctx, d.Checkpoint, backoff, d.Log)
	defer ck.close()
	age := shardAge{set: d.Counters.Age}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// Deliveries keep the caller's stop channel; the loop stops selecting each channel once it fired.
	stopSel, ctxDone := stop, ctx.Done()

	for {
		now := time.Now()
		var wake time.Time // earliest batching window to expire
		if !stopping && pendingCk == "" {
			memFull := d.Memory != nil && d.Memory.Full()
			for i := range lanes {
				l := &lanes[i]
				room := laneRoom(d.BatchSize, progress.SentBy(i))
				if l.busy || len(l.queue) == 0 || room == 0 {
					continue
				}
				deadline := l.since.Add(d.Window)
				// Like Lambda, a batch goes when the window ends, batch_size records wait, or the
				// waiting records fill an event (the payload limit); and when the memory budget
				// stops reading, as no more records can come.
				full := len(l.queue) >= d.BatchSize || d.MaxEventBytes > 0 && envelopeBytes+l.bytes >= d.MaxEventBytes || memFull
				if d.Window > 0 && !full && !ended && now.Before(deadline) {
					if wake.IsZero() || deadline.Before(wake) {
						wake = deadline
					}
					continue
				}
				b, ids, sizes := d.cut(l, room)
				for _, id := range ids {
					progress.Sent(id, i)
				}
				queued -= len(ids)
				l.busy = true
				inflight++
				go func(lane int, b sinks.Batch, ids []int64, sizes []int) {
					err := d.Deliver(ctx, stop, b)
					done <- completion{lane: lane, ids: ids, sizes: sizes, err: err}
				}(i, b, ids, sizes)
			}
		}
		if inflight == 0 {
			if stopping {
				if err := ck.close(); err != nil && runErr == nil {
					runErr = err
				}
				if runErr != nil {
					return runErr
				}
				return ErrStopped
			}
			if ended && progress.Pending() == 0 {
				return ck.close()
			}
		}

		var in <-chan shards.Page
		if !ended && !stopping && queued < maxQueued && progress.Pending() < maxPending {
			in = pages
		}
		var tick <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
			tick = timer.C
		}
		select {
		case p, ok := <-in:
			if !ok {
				// The reader ended without an End page: the shard is gone from the stream (the
				// reader's only other way out is ctx, seen below). What was read is delivered,
				// as after an End page; dropping it would lose records of a shard marked finished.
				ended = true
				break
			}
			queued += d.accept(p, lanes, &progress, &age)
			if d.Memory != nil {
				// The reader's estimate for the page gives way to the queued records' sizes
				// (accept charged them).
				d.Memory.Release(p.Bytes)
			}
			ended = p.End
			if seq, moved := progress.Advance(); moved {
				ck.set(seq)
				pendingCk = seq
			}
		case c := <-done:
			inflight--
			lanes[c.lane].busy = false
			if c.err != nil {
				// The policy gave up (stop or ctx): only the records it reports done are. Stop
				// taking work.
				var inc *IncompleteError
				if errors.As(c.err, &inc) {
					n := min(inc.Done, len(c.ids))
					for _, id := range c.ids[:n] {
						progress.Done(id)
					}
					d.release(c.sizes[:n])
					if seq, moved := progress.Advance(); moved {
						ck.set(seq)
						pendingCk = seq
					}
				}
				stopping = true
				if ctx.Err() == nil && !isClosed(stop) && runErr == nil {
					runErr = fmt.Errorf("deliver batch of shard %s: %w", d.ShardID, c.err)
				}
				break
			}
			for _, id := range c.ids {
				progress.Done(id)
			}
			d.release(c.sizes)
			if seq, moved := progress.Advance(); moved {
				ck.set(seq)
				pendingCk = seq
			}
		case seq := <-ck.wrote:
			if seq == pendingCk {
				pendingCk = ""
			}
		case err := <-ck.failed:
			// A checkpoint was refused (lease lost), or ctx ended while it was retried: stop
			// delivering for this shard now.
			cancel()
			stopping = true
			if runErr == nil {
				runErr = err
			}
		case <-stopSel:
			stopping = true
			stopSel = nil // a closed channel stays ready
		case <-ctxDone:
			stopping = true
			ctxDone = nil
			if runErr == nil {
				runErr = ctx.Err()
			}
		case <-tick:
		}
		timer.Stop()
		age.report(&progress)
	}
}

func isClosed(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// accept converts and filters a page's records and queues them on their lanes, charging them to
// Memory at their event JSON size; it returns how many it queued.
func (d *Dispatcher) accept(p shards.Page, lanes []lane, progress *Progress, age *shardAge) int {
	n := len(p.Records)
	age.caughtUp = n == 0
	if n == 0 {
		return 0
	}
	d.Counters.Polled(n)
	var queued, filtered, malformed int
	var charged int64
	var buf []byte // scratch for measuring records, reused: large items would otherwise leave as much garbage
	now := time.Now()
	for _, r := range p.Records {
		seq := aws.ToString(r.Dynamodb.SequenceNumber)
		id := progress.Add(seq, age.created(r, p.ReadAt))
		rec, err := event.FromStreams(r, d.StreamARN)
		if err != nil {
			// The SDK decoded a record poller cannot express as Lambda's event. It cannot be delivered;
			// say exactly which and why, and move on rather than stall the shard.
			d.Log.Error("record cannot be converted to Lambda's event shape; skipped",
				zap.String("sequence_number", seq), zap.Error(err))
			progress.Done(id)
			malformed++
			continue
		}
		if d.Filter != nil && !d.Filter.Match(&rec) {
			progress.Done(id)
			filtered++
			continue
		}
		if buf, err = event.AppendJSON(buf[:0], &rec); err != nil {
			d.Log.Error("record cannot be encoded as JSON; skipped", zap.String("sequence_number", seq), zap.Error(err))
			progress.Done(id)
			malformed++
			continue
		}
		l := &lanes[d.laneOf(&rec, len(lanes))]
		if len(l.queue) == 0 {
			l.since = now
		}
		if len(l.queue) > 0 {
			l.bytes++ // the comma
		}
		size := len(buf)
		l.queue = append(l.queue, item{rec: rec, id: id, size: size})
		l.bytes += size
		charged += int64(size)
		queued++
	}
	if d.Memory != nil {
		d.Memory.Charge(charged)
	}
	if filtered > 0 && d.Counters.FilteredOut != nil {
		d.Counters.FilteredOut(filtered)
	}
	if malformed > 0 && d.Counters.Malformed != nil {
		d.Counters.Malformed(malformed)
	}
	return queued
}

// envelopeBytes is the size of {"Records":[]} around the records.
const envelopeBytes = len(`{"Records":[]}`)

// cut takes the next batch off a lane: at most limit (<= BatchSize) records and at most
// MaxEventBytes of event JSON, and always at least one record. It returns the records' ids and sizes.
func (d *Dispatcher) cut(l *lane, limit int) (sinks.Batch, []int64, []int) {
	n, size := 0, envelopeBytes
	for n < len(l.queue) && n < limit {
		next := l.queue[n].size
		if n > 0 {
			next++ // the comma
		}
		if n > 0 && d.MaxEventBytes > 0 && size+next > d.MaxEventBytes {
			break
		}
		size += next
		n++
	}
	b := sinks.Batch{Pipeline: d.Pipeline, StreamARN: d.StreamARN, ShardID: d.ShardID, Records: make([]events.DynamoDBEventRecord, n)}
	ids, sizes := make([]int64, n), make([]int, n)
	for i := range n {
		b.Records[i] = l.queue[i].rec
		ids[i], sizes[i] = l.queue[i].id, l.queue[i].size
	}
	l.bytes -= size - envelopeBytes
	if n < len(l.queue) {
		l.bytes-- // the comma after the last record cut
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	l.since = time.Now()
	return b, ids, sizes
}

// laneRoom is how many records a lane may send now (the repeat bound, see Dispatcher): what is left
// of batchSize after the records it sent that the checkpoint has not passed.
func laneRoom(batchSize, sentNotPassed int) int {
	return max(0, batchSize-sentNotPassed)
}

// release gives back the memory of records that are done.
func (d *Dispatcher) release(sizes []int) {
	if d.Memory == nil {
		return
	}
	var n int64
	for _, s := range sizes {
		n += int64(s)
	}
	d.Memory.Release(n)
}

// laneCount is the number of lanes: Lanes, or 1 without a HashKey. Hashing anything but the partition
// key alone (every key attribute, say) would put one partition key's items with different sort keys
// in different lanes, in flight at once, out of order.
func (d *Dispatcher) laneCount() int {
	if d.HashKey == "" {
		return 1
	}
	return max(1, d.Lanes)
}

// laneOf picks a record's lane from its partition key, so one key's records stay in one lane, in order.
// A record without the HashKey attribute (a key schema that does not match the stream) goes to lane
// 0, all such records together, in order.
func (d *Dispatcher) laneOf(r *events.DynamoDBEventRecord, n int) int {
	v, ok := r.Change.Keys[d.HashKey]
	if n == 1 || !ok {
		return 0
	}
	h := fnv.New32a()
	b, _ := v.MarshalJSON()
	h.Write(b)
	return int(h.Sum32() % uint32(n))
}
