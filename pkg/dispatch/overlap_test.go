package dispatch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/poller-dev/poller/pkg/sinks"
)

// batchesPerLane counts the batches delivered so far per lane (a batch holds one lane's records).
func batchesPerLane(d *Dispatcher, r *recorder, recs map[string]*events.DynamoDBEventRecord) map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[int]int{}
	for _, b := range r.batches {
		n[d.laneOf(recs[b[0]], d.laneCount())]++
	}
	return n
}

// eventsBySeq converts recs to the event records the dispatcher hands the sink, by sequence number.
func eventsBySeq(t *testing.T, recs []types.Record) map[string]*events.DynamoDBEventRecord {
	t.Helper()
	m := map[string]*events.DynamoDBEventRecord{}
	for _, r := range recs {
		var ev events.DynamoDBEventRecord
		if _, v := (&Dispatcher{}).admit(r, &ev, nil); v != keep {
			t.Fatalf("record %s cannot be converted", *r.Dynamodb.SequenceNumber)
		}
		m[ev.Change.SequenceNumber] = &ev
	}
	return m
}

// TestDispatcherOverlapsTheCheckpointWriteWithTheNextBatch: while the lease table holds the first
// checkpoint write, every lane delivers its next batch (the write overlaps it), but not a third one.
// Once the table answers, the shard is delivered to its end, each record once.
func TestDispatcherOverlapsTheCheckpointWriteWithTheNextBatch(t *testing.T) {
	tests := []struct {
		name        string
		lanes, keys int
	}{
		{name: "one lane", lanes: 1, keys: 1},
		{name: "four lanes", lanes: 4, keys: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n, batch = 400, 10 // ten batches or so per lane
				recs := make([]types.Record, n)
				for i := range recs {
					recs[i] = rec(i, fmt.Sprint("k", i%tt.keys), 0)
				}
				r := &recorder{}
				d := newDispatcher(t, r)
				d.BatchSize, d.Lanes = batch, tt.lanes
				gate := make(chan struct{})
				d.Checkpoint = func(ctx context.Context, seq string) error {
					select {
					case <-gate:
					case <-ctx.Done():
						return ctx.Err()
					}
					return r.checkpoint(ctx, seq)
				}
				errc := make(chan error, 1)
				go func() { errc <- d.Run(context.Background(), make(chan struct{}), pagesOf(recs, n, true)) }()

				synctest.Wait() // the first checkpoint write hangs; everything else that may run has run
				got := batchesPerLane(d, r, eventsBySeq(t, recs))
				want := map[int]int{}
				for l := range tt.lanes {
					want[l] = 2
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("batches per lane while the first checkpoint write hangs = %v, want %v (the next batch overlaps the write, a third waits)", got, want)
				}

				close(gate)
				if err := <-errc; err != nil {
					t.Fatalf("Run() = %v, want nil (shard done)", err)
				}
				checkDeliveredOnce(t, r, n)
			})
		})
	}
}

// checkDeliveredOnce fails unless the n records rec(0..n-1) were each delivered once and the last
// checkpoint is the last record's.
func checkDeliveredOnce(t *testing.T, r *recorder, n int) {
	t.Helper()
	var all []string
	for _, b := range r.batches {
		all = append(all, b...)
	}
	slices.Sort(all)
	if len(all) != n || len(slices.Compact(all)) != n {
		t.Errorf("delivered %d records, %d distinct; want each of %d once", len(all), len(slices.Compact(all)), n)
	}
	if last := r.checkpoints[len(r.checkpoints)-1]; last != seqOf(n-1) {
		t.Errorf("last checkpoint = %s, want %s", last, seqOf(n-1))
	}
}

// TestDispatcherThirdBatchWaitsForTheFirstCheckpointWritten: with the lease table answering one
// write at a time, under the test's control, a lane's batch k+2 starts only once the checkpoint of
// its batch k is written: whenever the test holds a write, the batches delivered are those the
// checkpoint written passes, plus two.
func TestDispatcherThirdBatchWaitsForTheFirstCheckpointWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, batch = 60, 10
		recs := make([]types.Record, n)
		for i := range recs {
			recs[i] = rec(i, "k", 0)
		}
		r := &recorder{}
		d := newDispatcher(t, r)
		d.BatchSize = batch
		writes := make(chan string) // a write the table received
		answers := make(chan error) // the table's answer to it
		d.Checkpoint = func(ctx context.Context, seq string) error {
			writes <- seq
			if err := <-answers; err != nil {
				return err
			}
			return r.checkpoint(ctx, seq)
		}
		errc := make(chan error, 1)
		go func() { errc <- d.Run(context.Background(), make(chan struct{}), pagesOf(recs, n, true)) }()

		passed := 0 // batches the checkpoint written passes
		for failed := false; ; {
			synctest.Wait() // a write hangs; everything else that may run has run
			r.mu.Lock()
			delivered := len(r.batches)
			r.mu.Unlock()
			if want := min(passed+2, n/batch); delivered != want && !failed {
				t.Errorf("%d batches delivered with the checkpoint written passing %d, want %d", delivered, passed, want)
				failed = true // once; the writes are still answered, so that Run ends
			}
			select {
			case seq := <-writes:
				i, err := strconv.Atoi(seq[1:]) // seqOf(i)
				if err != nil || (i+1)%batch != 0 {
					t.Fatalf("checkpoint %s is not the last record of a batch", seq)
				}
				answers <- nil
				passed = (i + 1) / batch
			case err := <-errc:
				if err != nil {
					t.Fatalf("Run() = %v, want nil (shard done)", err)
				}
				checkDeliveredOnce(t, r, n)
				return
			}
		}
	})
}

// TestPropertyRepeatBoundUnderSlowCheckpointWrites runs shards with random lanes, batch sizes,
// pages and sink latencies against a lease table whose answers the test gives: it holds each write
// for a random while of fake time and then until everything else that may run has run (the most a
// lane can run ahead), then fails it at times (retried in place) or acknowledges it. Whenever a batch
// reaches the sink, per lane at most two batches and at most 2 x batch_size records beyond the last
// checkpoint acknowledged have reached it: what a kill -9 at that moment would deliver again. Every
// run ends with each record delivered once.
func TestPropertyRepeatBoundUnderSlowCheckpointWrites(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { slowCheckpointRun(t, seed) })
		})
	}
}

// boundWorld is one run of TestPropertyRepeatBoundUnderSlowCheckpointWrites: what reached the sink
// and what the lease table acknowledged.
type boundWorld struct {
	d    *Dispatcher
	r    *recorder
	rng  *lockedRand
	mu   sync.Mutex
	sent []sentBatch // every batch that reached the sink, in order
	// written is the last checkpoint acknowledged; "" none yet.
	written string
	errs    []string
}

type sentBatch struct {
	lane int
	seqs []string
}

// deliver checks the repeat bound as b reaches the sink, then answers after a random latency.
func (w *boundWorld) deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
	w.mu.Lock()
	sb := sentBatch{lane: w.d.laneOf(&b.Records[0], w.d.laneCount())}
	for _, x := range b.Records {
		sb.seqs = append(sb.seqs, x.Change.SequenceNumber)
	}
	w.sent = append(w.sent, sb)
	w.checkBound()
	w.mu.Unlock()
	time.Sleep(time.Duration(w.rng.intN(5)) * time.Millisecond)
	return w.r.deliver(ctx, stop, b)
}

// checkBound counts, per lane, the batches and records beyond the checkpoint written, under w.mu.
func (w *boundWorld) checkBound() {
	batches, records := map[int]int{}, map[int]int{}
	for _, b := range w.sent {
		beyond := 0
		for _, seq := range b.seqs {
			if w.written == "" || seq > w.written { // equal-length numbers: string order is numeric
				beyond++
			}
		}
		if beyond > 0 {
			batches[b.lane]++
			records[b.lane] += beyond
		}
	}
	for lane := range batches {
		if batches[lane] > 2 || records[lane] > 2*w.d.BatchSize {
			w.errs = append(w.errs, fmt.Sprintf("lane %d: %d batches, %d records beyond the checkpoint written %q reached the sink, want at most 2 and %d",
				lane, batches[lane], records[lane], w.written, 2*w.d.BatchSize))
		}
	}
}

func slowCheckpointRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xc4ec))
	n, keys := 100+rng.IntN(300), 1+rng.IntN(30)
	recs := make([]types.Record, n)
	for i := range recs {
		recs[i] = rec(i, fmt.Sprint("k", rng.IntN(keys)), 0)
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.BatchSize, d.Lanes = 1+rng.IntN(20), 1+rng.IntN(4)
	d.Window = time.Duration(rng.IntN(3)) * time.Millisecond
	d.CheckpointBackoff = func(int) time.Duration { return time.Millisecond }
	w := &boundWorld{d: d, r: r, rng: &lockedRand{r: rand.New(rand.NewPCG(seed, 0x51))}}
	d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error { return w.deliver(ctx, stop, b) }
	writes, answers := make(chan string), make(chan error)
	d.Checkpoint = func(ctx context.Context, seq string) error {
		writes <- seq
		if err := <-answers; err != nil {
			return err
		}
		w.mu.Lock()
		w.written = seq
		w.mu.Unlock()
		return r.checkpoint(ctx, seq)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), make(chan struct{}), pagesOfRandom(recs, rng, true)) }()
	for done := false; !done; {
		select {
		case <-writes:
			// The write hangs for a while of fake time (sink calls answer meanwhile), then until
			// everything else that may run has run.
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			synctest.Wait()
			var err error
			if rng.IntN(5) == 0 {
				err = fmt.Errorf("checkpoint: %w", errThrottled)
			}
			answers <- err
		case err := <-errc:
			if err != nil {
				t.Fatalf("Run() = %v, want nil (shard done)", err)
			}
			done = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs[:min(len(w.errs), 10)] {
		t.Error(e)
	}
	checkDeliveredOnce(t, r, n)
	t.Logf("n=%d keys=%d lanes=%d batch=%d: %d batches, %d checkpoints", n, keys, d.Lanes, d.BatchSize, len(r.batches), len(r.checkpoints))
}
