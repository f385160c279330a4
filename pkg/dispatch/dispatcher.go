// Package dispatch turns the pages of one shard into sink batches: it converts and filters the
// records, spreads them over lanes by partition key (parallelization_factor), cuts batches by
// count, batching window and event size, and hands each batch to a DeliverFunc (in poller, the
// failure policy of pkg/failure). It sits between the shard's reader (pkg/shards) and the sink.
//
// What is done is tracked by pkg/progress, which also writes the checkpoint: the contiguous prefix
// of records that are done. The dispatcher paces its lanes by that checkpoint and by the last one
// written (the repeat bound, see Dispatcher).
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/progress"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// Matcher selects the records to deliver (the pipeline's filters).
type Matcher interface {
	Match(r *events.DynamoDBEventRecord) bool
}

// DeliverFunc delivers one batch under the pipeline's failure policy (failure.Policy.Deliver is
// one). It returns nil once every record of the batch is done (delivered, or discarded to
// on_failure); any error means it gave up without finishing (ctx canceled, or stop closed between
// attempts): then only the first Done records of a *failure.IncompleteError are done, and nothing
// else of the batch may be checkpointed.
type DeliverFunc func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error

// Hooks is told what the dispatcher does with a shard's records; *hooks.Set satisfies it.
type Hooks interface {
	// OnRecordsPolled is told how many records a page brought.
	OnRecordsPolled(shardID string, n int)
	// OnRecordsFilteredOut is told how many records of a page matched no filter.
	OnRecordsFilteredOut(shardID string, n int)
	// OnRecordsDropped is told of records that cannot be delivered (hooks.DroppedMalformed).
	OnRecordsDropped(shardID, reason string, n int)
	// OnIteratorAge is told the creation time the shard's iterator age is measured from whenever
	// it changes: the oldest record read and not yet done; with every record done, the newest read;
	// zero when caught up.
	OnIteratorAge(shardID string, since time.Time)
	// OnCheckpointWritten is told each checkpoint written (a quick succession: only the newest).
	OnCheckpointWritten(shardID, seq string)
}

var _ Hooks = (*hooks.Set)(nil)

// Memory is the part of a shard's byte budget the dispatcher uses; *membudget.Account satisfies it.
type Memory interface {
	Charge(n int64)
	Release(n int64)
	// Full reports that the shard may read no more until some of what it holds is released.
	Full() bool
}

// Dispatcher handles one shard. Its fields are immutable once Run starts.
//
// Invariant (the repeat bound): a lane starts a batch only while both hold:
//   - the records it handed to the sink that the tracker's checkpoint (progress.Tracker: the done
//     prefix) has not passed, plus the new batch, are at most BatchSize: a lane runs at most one
//     batch ahead of that checkpoint, however far a slower lane holds it back;
//   - at most one earlier batch of the lane reached the sink beyond the last checkpoint written
//     (acknowledged by the lease table): the one whose checkpoint write may still be in flight.
//
// So a lane's next batch runs while the checkpoint of its last one is written, and a shard's rate is
// not bounded by sink time plus checkpoint latency; but a third batch waits until the first one's
// checkpoint is written. At any moment at most two batches, 2 x BatchSize records, per lane (2 x
// BatchSize x Lanes per shard) beyond the last checkpoint written have been sent: in flight, done
// behind a slower lane, or passed by a checkpoint not yet written. That is what a kill -9 can deliver
// again.
//
// This never deadlocks. The lane that holds the oldest record not done either has it in flight,
// and the delivery ends, or has it queued: then its earlier records precede that record, so they are
// done and the tracker's checkpoint has passed them (it has sent nothing that checkpoint has not
// passed), and the Checkpointer writes the newest checkpoint handed to it (a failed write is retried
// in place; a refused one ends Run), so once that write is acknowledged none of the lane's batches is
// beyond the checkpoint written and it can start.
type Dispatcher struct {
	// Pipeline, StreamARN and ShardID name the shard; every batch carries them.
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
	// Tumbling is tumbling_window: 0 is off; else each batch holds records of one window (by
	// ApproximateCreationDateTime, aligned to the epoch), carries the window's state (sinks.Window)
	// and each window ends with a final call through Final. It needs one lane.
	Tumbling time.Duration
	// Windows, with Tumbling, stores the shard's window between runs; nil keeps it in memory only.
	Windows WindowStore
	// Final, with Tumbling, makes a window's final call (records none): one sink call, repeated
	// until it succeeds.
	Final FinalFunc
	// MaxEventBytes caps the JSON size of one event ({"Records":[...]}), e.g. Lambda's 6 MB.
	MaxEventBytes int
	// HashKey is the table's partition key attribute, which picks a record's lane; "" (the key schema
	// is unknown) makes one lane, the only way to keep each partition key's records in order then.
	HashKey string
	Filter  Matcher // nil delivers every record
	Deliver DeliverFunc
	// Checkpoint durably records that every record up to seq is done. An error wrapping
	// progress.ErrCheckpointRefused stops the shard (a lost lease must not keep delivering); any
	// other error is retried with CheckpointBackoff while ctx lives; meanwhile each lane starts at
	// most one more batch (the repeat bound).
	Checkpoint progress.WriteFunc
	// Memory, if not nil, is the shard's byte budget, which the reader charged each page to
	// (Page.Bytes). The dispatcher gives that back once the page is converted, holds each queued
	// record at its event JSON size until the record is done, and sends what its lanes hold without
	// waiting out the batching window once the budget stops the reader.
	Memory Memory
	// Hooks is told what the dispatcher does; nil tells nothing.
	Hooks Hooks
	Log   *zap.Logger // required

	// CheckpointBackoff gives the wait before retry number attempt (1, 2, ...) of a failed checkpoint
	// write; nil waits 100 ms doubling to 5 s, jittered (defaultCheckpointBackoff).
	CheckpointBackoff func(attempt int) time.Duration
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
// otherwise is retried in place (see progress.Checkpointer). Every goroutine it starts has ended
// when it returns.
func (d *Dispatcher) Run(ctx context.Context, stop <-chan struct{}, pages <-chan shards.Page) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := d.newLoop(ctx, cancel, stop)
	defer l.close()
	if d.Tumbling > 0 {
		if d.Final == nil {
			return fmt.Errorf("dispatch shard %s: a tumbling window needs Final", d.ShardID)
		}
		t, err := newTumbler(ctx, d, l.backoff)
		if err != nil {
			return err
		}
		l.tumbler = t
	}
	for {
		wake := l.startBatches(time.Now())
		if over, err := l.over(); over {
			return err
		}
		l.step(pages, wake)
		l.reportAge()
	}
}

// laneCount is the number of lanes: Lanes, or 1 without a HashKey or with a tumbling window (its
// state is carried from call to call, in order). Hashing anything but the partition key alone (every
// key attribute, say) would put one partition key's items with different sort keys in different
// lanes, in flight at once, out of order.
func (d *Dispatcher) laneCount() int {
	if d.HashKey == "" || d.Tumbling > 0 {
		return 1
	}
	return max(1, d.Lanes)
}

// laneOf picks a record's lane from its partition key, so one key's records stay in one lane, in order.
// A record without the HashKey attribute (a key schema that does not match the stream) goes to lane
// 0, all such records together, in order.
func (d *Dispatcher) laneOf(r *events.DynamoDBEventRecord, n int) int {
	if n == 1 {
		return 0
	}
	v, ok := r.Change.Keys[d.HashKey]
	if !ok {
		return 0
	}
	return int(keyHash(v) % uint32(n))
}

// keyHash is the FNV-1a hash of a partition key value: its type and its text (a key is S, N or B),
// without encoding it, as this runs for every record read.
func keyHash(v events.DynamoDBAttributeValue) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset) ^ uint32(v.DataType())
	h *= prime
	var s string
	switch v.DataType() {
	case events.DataTypeString:
		s = v.String()
	case events.DataTypeNumber:
		s = v.Number()
	case events.DataTypeBinary:
		s = string(v.Binary())
	default: // not a key type; any stable text will do
		b, _ := v.MarshalJSON()
		s = string(b)
	}
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime
	}
	return h
}

func (d *Dispatcher) hooks() Hooks {
	if d.Hooks == nil {
		return noHooks{}
	}
	return d.Hooks
}

// noHooks is told everything and does nothing.
type noHooks struct{}

func (noHooks) OnRecordsPolled(string, int)          {}
func (noHooks) OnRecordsFilteredOut(string, int)     {}
func (noHooks) OnRecordsDropped(string, string, int) {}
func (noHooks) OnIteratorAge(string, time.Time)      {}
func (noHooks) OnCheckpointWritten(string, string)   {}
