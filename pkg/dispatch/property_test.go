package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/poller-dev/poller/pkg/failure"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// TestPropertyParallelLanes runs a shard through the dispatcher and the failure policy with
// parallelization_factor 10, random partition keys, page sizes, batch sizes, sink latencies, sink
// failures (errors, partial batch responses, unreachable), poison records, failure knobs and an
// on_failure destination that is down at times; half the runs crash (the context is canceled) at
// a random moment. In every run:
//   - no partition key has records in two sink calls at once;
//   - each key's records are done (accepted by the sink or reported to on_failure) in sequence
//     order, each at most once, and a call holds its records in sequence order;
//   - filtered-out records never reach the sink;
//   - every record up to the last checkpoint written is done: a crash at any moment loses nothing
//     behind the checkpoint;
//   - at most 2 x batch_size records of any lane beyond the last checkpoint written ever reached
//     the sink or on_failure (a lane's next batch runs while its last one's checkpoint is written):
//     what a crash can repeat;
//   - a run that is not crashed ends with every record done exactly once and the checkpoint at the
//     shard's last record.
//
// Time is synctest's: latencies and backoffs cost nothing, and each seed replays the same schedule
// of random choices (goroutine interleavings may still differ).
func TestPropertyParallelLanes(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { propertyRun(t, seed) })
		})
	}
}

// propWorld is one run's sink, destination and observations.
type propWorld struct {
	rng *lockedRand

	failP, partialP, unreachableP float64
	poison                        map[string]bool
	destDownP                     float64

	mu       sync.Mutex
	inflight map[string]int      // key -> sink calls holding it now
	done     map[string][]string // key -> its records done, in the order they were done
	doneSeq  map[string]int      // sequence number -> times done
	sent     map[string]bool     // sequence numbers that reached the sink
	ckpts    []string            // checkpoints written, in order
	errs     []string
	// bound is 2 x batch_size: the most records of one lane beyond the last checkpoint written that
	// may have reached the sink or on_failure.
	bound int
	// laneOf is the dispatcher's lane of a record.
	laneOf func(r *events.DynamoDBEventRecord) int
	lanes  map[string]int // sequence number -> lane, of the records that reached the sink
}

// checkRepeatBound counts, per lane, the records that reached the sink or on_failure beyond the
// last checkpoint written, under w.mu.
func (w *propWorld) checkRepeatBound() {
	last := ""
	if len(w.ckpts) > 0 {
		last = w.ckpts[len(w.ckpts)-1]
	}
	beyond := map[int]int{} // lane -> records
	for seq := range w.sent {
		if last == "" || seqLess(last, seq) {
			beyond[w.lanes[seq]]++
		}
	}
	for seq := range w.doneSeq {
		if !w.sent[seq] && (last == "" || seqLess(last, seq)) {
			beyond[w.lanes[seq]]++
		}
	}
	for lane, n := range beyond {
		if n > w.bound {
			w.violation("%d records of lane %d beyond the checkpoint %q reached the sink or on_failure, want at most %d",
				n, lane, last, w.bound)
		}
	}
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) float() float64 { l.mu.Lock(); defer l.mu.Unlock(); return l.r.Float64() }
func (l *lockedRand) intN(n int) int { l.mu.Lock(); defer l.mu.Unlock(); return l.r.IntN(n) }

func (w *propWorld) violation(format string, args ...any) {
	w.errs = append(w.errs, fmt.Sprintf(format, args...))
}

func keyOfRec(r events.DynamoDBEventRecord) string { return r.Change.Keys["pk"].String() }

// markDone records records as done, under w.mu.
func (w *propWorld) markDone(recs []events.DynamoDBEventRecord) {
	for _, r := range recs {
		k, seq := keyOfRec(r), r.Change.SequenceNumber
		if d := w.done[k]; len(d) > 0 && seqLess(seq, d[len(d)-1]) {
			w.violation("key %s: record %s done after %s", k, seq, d[len(d)-1])
		}
		w.done[k] = append(w.done[k], seq)
		w.doneSeq[seq]++
		if w.doneSeq[seq] > 1 {
			w.violation("record %s done %d times", seq, w.doneSeq[seq])
		}
	}
}

func seqLess(a, b string) bool {
	x, _ := new(big.Int).SetString(a, 10)
	y, _ := new(big.Int).SetString(b, 10)
	return x.Cmp(y) < 0
}

// Deliver is the sink: it checks the batch, waits a random latency and answers at random.
func (w *propWorld) Deliver(ctx context.Context, b sinks.Batch) error {
	keys := map[string]bool{}
	w.mu.Lock()
	w.checkKept("a sink call", b)
	for i, r := range b.Records {
		if i > 0 && !seqLess(b.Records[i-1].Change.SequenceNumber, r.Change.SequenceNumber) {
			w.violation("a call holds %s after %s", r.Change.SequenceNumber, b.Records[i-1].Change.SequenceNumber)
		}
		w.sent[r.Change.SequenceNumber] = true
		w.lanes[r.Change.SequenceNumber] = w.laneOf(&b.Records[i])
		keys[keyOfRec(r)] = true
	}
	w.checkRepeatBound()
	for k := range keys {
		w.inflight[k]++
		if w.inflight[k] > 1 {
			w.violation("key %s is in %d sink calls at once", k, w.inflight[k])
		}
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		for k := range keys {
			w.inflight[k]--
		}
		w.mu.Unlock()
	}()

	timer := time.NewTimer(time.Duration(w.rng.intN(20)) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}

	for _, r := range b.Records {
		if w.poison[r.Change.SequenceNumber] {
			return &sinks.HTTPError{StatusCode: 500, Body: "poison"}
		}
	}
	switch x := w.rng.float(); {
	case x < w.failP:
		return &sinks.HTTPError{StatusCode: 500}
	case x < w.failP+w.unreachableP:
		return &sinks.HTTPError{StatusCode: 429}
	case x < w.failP+w.unreachableP+w.partialP:
		i := w.rng.intN(len(b.Records))
		w.mu.Lock()
		w.markDone(b.Records[:i])
		w.mu.Unlock()
		return &sinks.BatchError{Failed: []string{b.Records[i].Change.SequenceNumber}}
	}
	w.mu.Lock()
	w.markDone(b.Records)
	w.mu.Unlock()
	return nil
}

func (w *propWorld) Close(context.Context) error { return nil }

// Send is the on_failure destination: down at random, else the records are done.
func (w *propWorld) Send(_ context.Context, f onfailure.Failure) error {
	if w.rng.float() < w.destDownP {
		return errors.New("destination unavailable")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkKept("an on_failure report", f.Batch)
	for i, r := range f.Batch.Records {
		w.lanes[r.Change.SequenceNumber] = w.laneOf(&f.Batch.Records[i])
	}
	w.markDone(f.Batch.Records)
	w.checkRepeatBound()
	return nil
}

// keyN is the number in a key "key<n>".
func keyN(key string) int {
	var n int
	_, _ = fmt.Sscanf(key, "key%d", &n)
	return n
}

// passKeys is a filter that drops the records of every seventh key.
type passKeys struct{}

func (passKeys) Match(r *events.DynamoDBEventRecord) bool { return keyN(keyOfRec(*r))%7 != 0 }

// checkKept checks that b carries the kept JSON of exactly its records, whichever cut made it
// (a bisected half, the rest after a partial response, a discarded segment).
func (w *propWorld) checkKept(what string, b sinks.Batch) {
	if len(b.RecordJSON) != len(b.Records) {
		w.violation("%s has the kept JSON of %d records for %d records", what, len(b.RecordJSON), len(b.Records))
		return
	}
	for i := range b.Records {
		fresh, err := event.AppendJSON(nil, &b.Records[i])
		if len(fresh) > keepJSONMax && b.RecordJSON[i] == nil {
			continue
		}
		if err != nil || !bytes.Equal(fresh, b.RecordJSON[i]) {
			w.violation("%s: the kept JSON of %s is not its encoding (%v)", what, b.Records[i].Change.SequenceNumber, err)
		}
	}
}

func propertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := 200 + rng.IntN(600)
	nKeys := 1 + rng.IntN(40)
	crash := seed%2 == 1
	maxRetries := []int{-1, 0, 1, 3}[rng.IntN(4)]

	w := &propWorld{
		rng:          &lockedRand{r: rand.New(rand.NewPCG(seed, 0xfa11))},
		failP:        rng.Float64() * 0.3,
		partialP:     rng.Float64() * 0.2,
		unreachableP: rng.Float64() * 0.1,
		destDownP:    rng.Float64() * 0.5,
		poison:       map[string]bool{},
		inflight:     map[string]int{}, done: map[string][]string{}, doneSeq: map[string]int{}, sent: map[string]bool{},
		lanes: map[string]int{},
	}
	// A lease table that is at times far slower than the sink: then lanes run ahead of the
	// checkpoint written, as far as the repeat bound lets them.
	ckLatency := []int{10, 100}[rng.IntN(2)]
	recs := make([]types.Record, n)
	filtered := map[string]bool{}
	for i := range recs {
		k := rng.IntN(nKeys)
		recs[i] = rec(i, fmt.Sprint("key", k), rng.IntN(200))
		if k%7 == 0 {
			filtered[seqOf(i)] = true
		}
		// Poison records always fail; only a finite retry budget gets past them.
		if maxRetries >= 0 && rng.IntN(50) == 0 {
			w.poison[seqOf(i)] = true
		}
	}

	pages := pagesOfRandom(recs, rng, !crash)

	rbif := rng.IntN(2) == 0
	if !rbif {
		w.partialP = 0 // a sink answers partially only with report_batch_item_failures
	}
	pol := &failure.Policy{
		Sink: w, OnFailure: w, MaxRetryAttempts: maxRetries, BisectOnError: rng.IntN(2) == 0,
		ReportBatchItemFailures: rbif,
		Backoff:                 func(int) time.Duration { return time.Duration(w.rng.intN(5)) * time.Millisecond },
		Log:                     zap.NewNop(),
	}
	d := &Dispatcher{
		Pipeline: "p", StreamARN: "arn:stream", ShardID: "shard-1",
		BatchSize: 1 + rng.IntN(50), Window: time.Duration(rng.IntN(3)) * time.Millisecond, Lanes: 10,
		MaxEventBytes: 6 * 1024 * 1024, HashKey: "pk", Filter: passKeys{}, Deliver: pol.Deliver,
		Checkpoint: func(ctx context.Context, seq string) error {
			timer := time.NewTimer(time.Duration(w.rng.intN(ckLatency)) * time.Millisecond) // a lease table write
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			w.mu.Lock()
			w.ckpts = append(w.ckpts, seq)
			w.mu.Unlock()
			return nil
		},
		Log: zap.NewNop(),
	}
	w.bound = 2 * d.BatchSize
	w.laneOf = func(r *events.DynamoDBEventRecord) int { return d.laneOf(r, d.laneCount()) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if crash {
		crashAt := time.Duration(rng.IntN(400)) * time.Millisecond
		go func() {
			time.Sleep(crashAt)
			cancel()
		}()
	}
	err := d.Run(ctx, make(chan struct{}), pages)
	switch {
	case crash && err != nil && !errors.Is(err, context.Canceled):
		t.Fatalf("Run() = %v after a crash, want nil or context.Canceled", err)
	case !crash && err != nil:
		t.Fatalf("Run() = %v, want nil (shard done)", err)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs[:min(len(w.errs), 10)] {
		t.Error(e)
	}
	for seq := range w.sent {
		if filtered[seq] {
			t.Errorf("filtered-out record %s reached the sink", seq)
		}
	}
	last := ""
	if len(w.ckpts) > 0 {
		last = w.ckpts[len(w.ckpts)-1]
	}
	for i := 0; i < n && last != "" && !seqLess(last, seqOf(i)); i++ {
		if seq := seqOf(i); !filtered[seq] && w.doneSeq[seq] == 0 {
			t.Fatalf("record %s is behind the checkpoint %s but was neither delivered nor reported (crash=%v)", seq, last, crash)
		}
	}
	if !crash {
		for i := range n {
			if seq := seqOf(i); !filtered[seq] && w.doneSeq[seq] != 1 {
				t.Fatalf("record %s done %d times, want once", seq, w.doneSeq[seq])
			}
		}
		if last != seqOf(n-1) {
			t.Errorf("last checkpoint = %s, want the shard's last record %s", last, seqOf(n-1))
		}
	}
	t.Logf("n=%d keys=%d retries=%d bisect=%v rbif=%v batch=%d crash=%v: %d checkpoints, last %s",
		n, nKeys, maxRetries, pol.BisectOnError, pol.ReportBatchItemFailures, d.BatchSize, crash, len(w.ckpts), last)
}

// pagesOfRandom cuts recs into pages of random sizes (1..100), ending with an End page if end.
func pagesOfRandom(recs []types.Record, rng *rand.Rand, end bool) chan shards.Page {
	ch := make(chan shards.Page, len(recs)+2)
	for i := 0; i < len(recs); {
		k := min(len(recs)-i, 1+rng.IntN(100))
		ch <- shards.Page{Records: recs[i : i+k]}
		i += k
	}
	if end {
		ch <- shards.Page{End: true}
	}
	return ch
}
