package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/progress"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
	"github.com/poller-dev/poller/pkg/wait"
)

// errLeaseLost says another worker holds the lease now: this worker must not deliver or checkpoint
// for the shard any more.
var errLeaseLost = errors.New("lease lost")

// shardWorker reads and dispatches one shard whose lease this worker holds. It is owned by the
// Pipeline's loop: stop means close(stop) (graceful) or cancel() (at once), then <-done.
type shardWorker struct {
	id     string
	held   *checkpoint.Held
	stop   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// deliver is the pipeline's policy behind this shard's fence; immutable.
	deliver dispatch.DeliverFunc
	// final is one call of the shard's fenced sink: a tumbling window's final call; immutable.
	final dispatch.FinalFunc

	// Written before done is closed; read after.
	err      error
	finished bool
	// idleIter is the shard's iterator while a LATEST lease had no record delivered yet (a string,
	// "" once one was): stored in the lease when it is released or handed over (Coordinator.Ended and Leave, through checkpoint.Ended).
	idleIter atomic.Value
}

// runShard reads the shard from start, dispatches its records, checkpoints through held, and marks
// the lease finished when the shard is read and delivered to its end.
func (p *Pipeline) runShard(ctx context.Context, w *shardWorker, start shardStart, last string, stream shards.Stream) {
	defer close(w.done)
	log := p.Log.With(zap.String("shard_id", w.id))
	p.hooks.OnShardStarted(w.id)
	defer func() { p.hooks.OnShardStopped(w.id, w.finished) }()

	// The shard's share of the process's memory budget, shared by its reader and dispatcher; what
	// it still holds when both have ended (pages read but never taken) is given back.
	mem := p.memory.Open(p.shardMemory, p.hooks.OnBufferedBytes)
	defer mem.Close()
	reader := &shards.Reader{
		API: p.Streams, StreamARN: stream.ARN, ShardID: w.id,
		PollInterval: p.Config.PollInterval, IdlePollInterval: p.Config.IdlePollInterval, Stagger: shards.RandomStagger, Pace: p.pace.Stretch, Limit: 1000,
		Backoff: wait.Backoff(100*time.Millisecond, 10*time.Second), Hooks: p.hooks, Memory: mem, Log: log,
	}
	if start.Resolve {
		var err error
		if start, err = p.resolveLatest(ctx, w, reader); err != nil {
			w.err = err
			return
		}
	}
	reader.Start, reader.StartIterator = start.Pos, start.Iterator
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	pages, readErr, pinErr := p.startReading(readCtx, w, reader, start, log)

	// last is the newest checkpoint written; the checkpointer goroutine writes it, and it is read
	// only after Run returned (which waits for that goroutine).
	err := p.dispatcher(w, stream, mem, &last, log).Run(ctx, w.stop, pages)
	stopReading()
	rerr := <-readErr
	if perr := <-pinErr; perr != nil {
		w.err = perr
		return
	}
	w.err = p.endShard(ctx, w, err, rerr, last, log)
}

// startReading runs the shard's reader and, for a start to pin, the pinFirst stage behind it, until
// ctx ends. It returns the pages for the dispatcher, and the reader's and the pin stage's errors,
// each sent once its goroutine ended (the pin stage's is nil without one).
func (p *Pipeline) startReading(ctx context.Context, w *shardWorker, reader *shards.Reader, start shardStart, log *zap.Logger) (<-chan shards.Page, <-chan error, <-chan error) {
	pages := make(chan shards.Page, 1)
	readErr, pinErr := make(chan error, 1), make(chan error, 1)
	read := pages
	if start.Pin {
		read = make(chan shards.Page, 1)
		go func() {
			pin := func(ctx context.Context, seq string) error { return p.pinStart(ctx, w.held, seq, time.Time{}) }
			skip := func(n int) { p.hooks.OnRecordsSkipped(w.id, hooks.SkippedBeforeStart, n) }
			err := pinFirst(ctx, read, pages, start.SkipBefore, pin, func(it string) { w.idleIter.Store(it) }, skip, log)
			if err != nil {
				w.cancel() // the dispatcher must not take the records: the lease was lost, or the pin failed
			}
			pinErr <- err
		}()
	} else {
		pinErr <- nil
	}
	go func() {
		err := reader.Run(ctx, read)
		close(read)
		readErr <- err
	}()
	return pages, readErr, pinErr
}

// dispatcher builds the shard's dispatcher, which checkpoints through w.held and sets *last to
// each checkpoint written.
func (p *Pipeline) dispatcher(w *shardWorker, stream shards.Stream, mem dispatch.Memory, last *string, log *zap.Logger) *dispatch.Dispatcher {
	return &dispatch.Dispatcher{
		Pipeline: p.Name, StreamARN: stream.ARN, ShardID: w.id,
		BatchSize: p.Config.BatchSize, Window: p.Config.MaxBatchingWindow, Lanes: p.Config.ParallelizationFactor,
		MaxEventBytes: p.maxEventBytes, HashKey: stream.HashKey, Filter: p.Filter,
		Deliver: w.deliver, Memory: mem,
		Tumbling: p.Config.TumblingWindow, Final: w.final, Windows: p.windowStore(),
		Checkpoint: func(ctx context.Context, seq string) error {
			err := p.checkpoint(ctx, w.id, w.held, seq)
			if err == nil {
				*last = seq
			}
			return err
		},
		Hooks: shardHooks{Set: p.hooks, held: w.held},
		Log:   log,
	}
}

// shardHooks are the pipeline's hooks for one shard's dispatcher, which also hand the shard's
// iterator age to its lease: the next lease write stores it for `poller status`.
type shardHooks struct {
	*hooks.Set
	held *checkpoint.Held
}

func (h shardHooks) OnIteratorAge(shardID string, since time.Time) {
	h.held.ReportAge(since)
	h.Set.OnIteratorAge(shardID, since)
}

// endShard handles how the shard's dispatcher ended (err; rerr is the reader's error), and returns
// the worker's error. A shard delivered to its end is marked finished, with its last checkpoint.
func (p *Pipeline) endShard(ctx context.Context, w *shardWorker, err, rerr error, last string, log *zap.Logger) error {
	switch {
	case err == nil:
		// Read to its end (or to where the stream lost it) and every record read is done: the lease
		// is finished, and the children may start.
		if errors.Is(rerr, shards.ErrShardGone) {
			log.Warn("shard no longer exists in the stream; every record read was delivered; treating it as finished", zap.Error(rerr))
		}
		if err := p.finish(ctx, w.held, last); err != nil {
			return err
		}
		w.finished = true
		log.Info("shard finished", zap.String("last_sequence_number", last))
		return nil
	case errors.Is(err, dispatch.ErrStopped):
		if rerr != nil && !errors.Is(rerr, context.Canceled) {
			return fmt.Errorf("read shard %s: %w", w.id, rerr)
		}
		return nil
	default:
		return err
	}
}

// checkpoint writes seq for the held lease, once: the dispatcher retries a failed write in place,
// with backoff, for as long as the shard runs. A write that can never succeed is
// progress.ErrCheckpointRefused: the lease was taken (errLeaseLost), or the value was refused.
func (p *Pipeline) checkpoint(ctx context.Context, shardID string, held *checkpoint.Held, seq string) error {
	owned, err := held.Checkpoint(ctx, seq)
	switch {
	case err == nil && owned:
		p.hooks.OnCheckpoint(shardID, hooks.ResultOK)
		return nil
	case err == nil:
		p.hooks.OnCheckpoint(shardID, hooks.ResultLost)
		return fmt.Errorf("checkpoint %s: %w: %w", seq, progress.ErrCheckpointRefused, errLeaseLost)
	}
	p.hooks.OnCheckpoint(shardID, hooks.ResultError)
	if errors.Is(err, checkpoint.ErrBackwards) || errors.Is(err, checkpoint.ErrBadSequence) {
		return fmt.Errorf("checkpoint %s: %w: %w", seq, progress.ErrCheckpointRefused, err)
	}
	return fmt.Errorf("checkpoint %s: %w", seq, err)
}

func (p *Pipeline) finish(ctx context.Context, held *checkpoint.Held, last string) error {
	owned, err := held.Finish(ctx, last)
	if err != nil {
		return fmt.Errorf("mark shard finished: %w", err)
	}
	if !owned {
		return fmt.Errorf("mark shard finished: %w", errLeaseLost)
	}
	return nil
}

// windowKeeper is the part of the lease table that keeps tumbling windows; *checkpoint.Store
// satisfies it.
type windowKeeper interface {
	LoadWindow(ctx context.Context, pipeline, shardID string) (checkpoint.Window, error)
	SaveWindow(ctx context.Context, pipeline, shardID string, w checkpoint.Window) error
}

var _ windowKeeper = (*checkpoint.Store)(nil)

// windowStore is where the shard's tumbling windows are kept: the lease table, one item per shard;
// nil (memory only) without a tumbling window or with a store that cannot keep them.
func (p *Pipeline) windowStore() dispatch.WindowStore {
	k, ok := p.Store.(windowKeeper)
	if p.Config.TumblingWindow <= 0 || !ok {
		return nil
	}
	return windows{k: k, pipeline: p.Name}
}

// windows keeps a pipeline's tumbling windows in the lease table.
type windows struct {
	k        windowKeeper
	pipeline string
}

func (s windows) LoadWindow(ctx context.Context, shardID string) (dispatch.WindowState, error) {
	w, err := s.k.LoadWindow(ctx, s.pipeline, shardID)
	return dispatch.WindowState(w), err
}

func (s windows) SaveWindow(ctx context.Context, shardID string, w dispatch.WindowState) error {
	return s.k.SaveWindow(ctx, s.pipeline, shardID, checkpoint.Window(w))
}

// finalCall is a shard's tumbling window final call: one call of its fenced sink, told to the hooks
// as every sink call is.
func (p *Pipeline) finalCall(shardID string, sink sinks.Sink) dispatch.FinalFunc {
	return func(ctx context.Context, b sinks.Batch) error {
		p.hooks.OnSinkCallStarted(shardID)
		start := time.Now()
		err := sink.Deliver(ctx, b)
		result := hooks.ResultOK
		if err != nil {
			result = hooks.ResultError
		}
		p.hooks.OnSinkCall(shardID, result, time.Since(start), err)
		return err
	}
}
