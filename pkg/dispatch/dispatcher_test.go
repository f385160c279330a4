package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/progress"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rec builds a stream record with a 25-digit sequence number (longer than 20 digits on purpose).
func rec(i int, key string, pad int) types.Record {
	now := time.Now()
	return types.Record{
		EventID: aws.String(fmt.Sprint("ev", i)), EventName: types.OperationTypeInsert, EventVersion: aws.String("1.1"),
		EventSource: aws.String("aws:dynamodb"), AwsRegion: aws.String("us-east-1"),
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: &now,
			Keys:                        map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
			NewImage: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: key}, "pad": &types.AttributeValueMemberS{Value: strings.Repeat("x", pad)},
			},
			SequenceNumber: aws.String(fmt.Sprintf("1%024d", i)), SizeBytes: aws.Int64(10), StreamViewType: types.StreamViewTypeNewImage,
		},
	}
}

// seqOf is the sequence number rec(i, ...) gives.
func seqOf(i int) string { return fmt.Sprintf("1%024d", i) }

func pagesOf(recs []types.Record, per int, end bool) chan shards.Page {
	ch := make(chan shards.Page, len(recs)/per+2)
	for i := 0; i < len(recs); i += per {
		ch <- shards.Page{Records: recs[i:min(i+per, len(recs))]}
	}
	if end {
		ch <- shards.Page{End: true}
	}
	return ch
}

// recorder is a sink-side record of what was delivered and checkpointed.
type recorder struct {
	mu          sync.Mutex
	batches     [][]string // sequence numbers per batch
	checkpoints []string
}

func (r *recorder) deliver(_ context.Context, _ <-chan struct{}, b sinks.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var seqs []string
	for _, x := range b.Records {
		seqs = append(seqs, x.Change.SequenceNumber)
	}
	r.batches = append(r.batches, seqs)
	return nil
}

func (r *recorder) checkpoint(_ context.Context, seq string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, seq)
	return nil
}

func newDispatcher(t *testing.T, r *recorder) *Dispatcher {
	return &Dispatcher{
		Pipeline: "p", StreamARN: "arn:stream", ShardID: "shard-1", BatchSize: 10, Lanes: 1,
		MaxEventBytes: 6 * 1024 * 1024, HashKey: "pk", Deliver: r.deliver, Checkpoint: r.checkpoint,
		Log: zaptest.NewLogger(t),
	}
}

type keyFilter string

func (k keyFilter) Match(r *events.DynamoDBEventRecord) bool {
	return r.Change.Keys["pk"].String() == string(k)
}

func TestDispatcherRun(t *testing.T) {
	many := make([]types.Record, 95)
	for i := range many {
		many[i] = rec(i, fmt.Sprint("k", i%7), 0)
	}
	mixed := make([]types.Record, 20)
	for i := range mixed {
		mixed[i] = rec(i, map[bool]string{true: "keep", false: "drop"}[i%4 == 0], 0)
	}
	allDropped := make([]types.Record, 5)
	for i := range allDropped {
		allDropped[i] = rec(i, "drop", 0)
	}
	big := make([]types.Record, 10)
	for i := range big {
		big[i] = rec(i, "k", 300_000) // ~300 KB each: three fit in a 1 MB event
	}
	tests := []struct {
		name        string
		recs        []types.Record
		perPage     int
		setup       func(*Dispatcher)
		wantBatches []int // records per batch
		wantLast    string
	}{
		{name: "a shard's records arrive in order in batches of batch_size", recs: many, perPage: 30, wantBatches: []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 5}, wantLast: "1" + fmt.Sprintf("%024d", 94)},
		{name: "filtered-out records are not sent but the checkpoint passes them", recs: mixed, perPage: 20,
			setup: func(d *Dispatcher) { d.Filter = keyFilter("keep") }, wantBatches: []int{5}, wantLast: "1" + fmt.Sprintf("%024d", 19)},
		{name: "a shard whose records are all filtered out still advances", recs: allDropped, perPage: 5,
			setup: func(d *Dispatcher) { d.Filter = keyFilter("keep") }, wantBatches: nil, wantLast: "1" + fmt.Sprintf("%024d", 4)},
		{name: "a batch is cut before it would exceed the event size limit", recs: big, perPage: 10,
			setup: func(d *Dispatcher) { d.MaxEventBytes = 1 << 20 }, wantBatches: []int{3, 3, 3, 1}, wantLast: "1" + fmt.Sprintf("%024d", 9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			d := newDispatcher(t, r)
			if tt.setup != nil {
				tt.setup(d)
			}
			if err := d.Run(context.Background(), make(chan struct{}), pagesOf(tt.recs, tt.perPage, true)); err != nil {
				t.Fatalf("Run() = %v, want nil (shard done)", err)
			}
			var sizes []int
			var all []string
			for _, b := range r.batches {
				sizes = append(sizes, len(b))
				all = append(all, b...)
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.wantBatches) {
				t.Errorf("batch sizes = %v, want %v", sizes, tt.wantBatches)
			}
			for i := 1; i < len(all); i++ {
				if all[i] <= all[i-1] { // equal-length numbers: string order is numeric order here
					t.Fatalf("records out of order: %s after %s", all[i], all[i-1])
				}
			}
			if n := len(r.checkpoints); n == 0 || r.checkpoints[n-1] != tt.wantLast {
				t.Errorf("checkpoints = %v, want last %s", r.checkpoints, tt.wantLast)
			}
		})
	}
}

func TestDispatcherStopFinishesTheBatchInFlight(t *testing.T) {
	recs := make([]types.Record, 50)
	for i := range recs {
		recs[i] = rec(i, "k", 0)
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	stop := make(chan struct{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	d.Deliver = func(ctx context.Context, s <-chan struct{}, b sinks.Batch) error {
		once.Do(func() { close(entered); <-release })
		return r.deliver(ctx, s, b)
	}
	pages := pagesOf(recs, 50, false) // no End: the shard stays open
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pages) }()
	<-entered
	close(stop)
	close(release)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
	if len(r.batches) != 1 {
		t.Fatalf("delivered %d batches, want only the one in flight at stop", len(r.batches))
	}
	want := r.batches[0][len(r.batches[0])-1]
	if n := len(r.checkpoints); n == 0 || r.checkpoints[n-1] != want {
		t.Errorf("checkpoints = %v, want the in-flight batch's last record %s", r.checkpoints, want)
	}
}

// TestDispatcherLostCheckpointStopsTheShard: the lease table refuses the first checkpoint while the
// next batch, which overlaps its write, is in the sink: that delivery is canceled at once, nothing
// else starts, and the refusal is not retried.
func TestDispatcherLostCheckpointStopsTheShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := make([]types.Record, 30)
		for i := range recs {
			recs[i] = rec(i, "k", 0)
		}
		r := &recorder{}
		d := newDispatcher(t, r)
		lost := fmt.Errorf("checkpoint: %w: lease lost", progress.ErrCheckpointRefused)
		second := make(chan struct{}) // closed once the second batch is in the sink
		canceled := false
		d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
			if b.Records[0].Change.SequenceNumber == seqOf(0) {
				return r.deliver(ctx, stop, b)
			}
			_ = r.deliver(ctx, stop, b)
			close(second)
			<-ctx.Done() // a sink call that hangs until the shard stops
			canceled = true
			return ctx.Err()
		}
		var calls atomic.Int32
		d.Checkpoint = func(context.Context, string) error {
			calls.Add(1)
			<-second
			return lost
		}
		err := d.Run(context.Background(), make(chan struct{}), pagesOf(recs, 30, false))
		if !errors.Is(err, lost) {
			t.Fatalf("Run() = %v, want the checkpoint error", err)
		}
		if len(r.batches) != 2 || !canceled {
			t.Errorf("delivered %d batches (the second canceled: %v), want 2: the one checkpointed and the one overlapping the refused write, canceled",
				len(r.batches), canceled)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("checkpoint writes = %d, want 1 (a refused write is not retried)", n)
		}
	})
}

var errThrottled = errors.New("ProvisionedThroughputExceededException (test)")

// TestDispatcherRetriesAFailedCheckpointInPlace: a lease table that throttles checkpoint writes for
// longer than a few attempts delays the shard but does not stop it: every batch is delivered once,
// and no batch starts before the checkpoint of the one two before it is written (the next batch
// overlaps a checkpoint write, a third waits for it).
func TestDispatcherRetriesAFailedCheckpointInPlace(t *testing.T) {
	recs := make([]types.Record, 30)
	for i := range recs {
		recs[i] = rec(i, "k", 0)
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.CheckpointBackoff = func(int) time.Duration { return time.Millisecond }
	var (
		mu       sync.Mutex
		failures int
		written  string // the last checkpoint written
	)
	d.Checkpoint = func(_ context.Context, seq string) error {
		mu.Lock()
		defer mu.Unlock()
		if failures < 7 { // throttled for seven attempts, more than any fixed number of retries
			failures++
			return fmt.Errorf("checkpoint %s: %w", seq, errThrottled)
		}
		written = seq
		return nil
	}
	d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
		r.mu.Lock()
		n := len(r.batches)
		var twoBefore string
		if n > 1 {
			twoBefore = r.batches[n-2][len(r.batches[n-2])-1]
		}
		r.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		if written < twoBefore { // equal-length numbers: string order is numeric order
			t.Errorf("batch %d started with checkpoint %q written, want at least the last record of the batch two before, %q", n+1, written, twoBefore)
		}
		return r.deliver(ctx, stop, b)
	}
	if err := d.Run(context.Background(), make(chan struct{}), pagesOf(recs, 30, true)); err != nil {
		t.Fatalf("Run() = %v, want nil (the shard read to its end)", err)
	}
	var all []string
	for _, b := range r.batches {
		all = append(all, b...)
	}
	if len(all) != 30 || len(r.batches) != 3 {
		t.Errorf("delivered %d records in %d batches, want 30 in 3, each once", len(all), len(r.batches))
	}
	if written != seqOf(29) || failures != 7 {
		t.Errorf("checkpoint written %s after %d failed attempts, want %s after 7", written, failures, seqOf(29))
	}
}

// TestDispatcherStopsRetryingACheckpointWhenCanceled: a checkpoint that fails for ever is retried
// until ctx ends (a lost lease found by renewal, or the drain limit), and Run then returns.
func TestDispatcherStopsRetryingACheckpointWhenCanceled(t *testing.T) {
	recs := make([]types.Record, 10)
	for i := range recs {
		recs[i] = rec(i, "k", 0)
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.CheckpointBackoff = func(int) time.Duration { return time.Millisecond }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	d.Checkpoint = func(context.Context, string) error {
		if calls.Add(1) == 5 {
			cancel()
		}
		return errThrottled
	}
	err := d.Run(ctx, make(chan struct{}), pagesOf(recs, 10, false))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v, want context.Canceled", err)
	}
	if len(r.batches) != 1 {
		t.Errorf("delivered %d batches, want 1", len(r.batches))
	}
}

// The reader closes pages without an End page when the shard is gone from the stream: the records
// already read, even those waiting for a batching window, are delivered and checkpointed.
func TestDispatcherDeliversWhatWasReadWhenTheShardIsGone(t *testing.T) {
	recs := make([]types.Record, 25)
	for i := range recs {
		recs[i] = rec(i, "k", 0)
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.Window = time.Hour // nothing would be sent before the window ends
	pages := pagesOf(recs, 25, false)
	close(pages)
	if err := d.Run(context.Background(), make(chan struct{}), pages); err != nil {
		t.Fatalf("Run() = %v, want nil (what was read is done)", err)
	}
	n := 0
	for _, b := range r.batches {
		n += len(b)
	}
	if n != len(recs) {
		t.Errorf("delivered %d records, want all %d that were read", n, len(recs))
	}
	if want := fmt.Sprintf("1%024d", 24); len(r.checkpoints) == 0 || r.checkpoints[len(r.checkpoints)-1] != want {
		t.Errorf("checkpoints = %v, want last %s", r.checkpoints, want)
	}
}

// poisonSink accepts every batch without the poison key and fails every batch with it.
type poisonSink struct {
	mu       sync.Mutex
	accepted []string
}

func (s *poisonSink) Deliver(_ context.Context, b sinks.Batch) error {
	for _, r := range b.Records {
		if r.Change.Keys["pk"].String() == "poison" {
			return errors.New("poison")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b.Records {
		s.accepted = append(s.accepted, r.Change.SequenceNumber)
	}
	return nil
}

func (s *poisonSink) Close(context.Context) error { return nil }

func (s *poisonSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted)
}

// A graceful stop while a bisected batch retries its poison record: the records the sink already
// accepted are checkpointed, so a restart (or the next owner) does not send them again.
func TestDispatcherStopDuringBisectCheckpointsTheAcceptedRecords(t *testing.T) {
	recs := make([]types.Record, 10)
	for i := range recs {
		recs[i] = rec(i, map[bool]string{true: "poison", false: "k"}[i == 9], 0)
	}
	sink := &poisonSink{}
	pol := &failure.Policy{Sink: sink, MaxRetryAttempts: -1, BisectOnError: true,
		Backoff: func(int) time.Duration { return time.Hour }, Log: zaptest.NewLogger(t)}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.Deliver = pol.Deliver
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pagesOf(recs, 10, false)) }()
	deadline := time.Now().Add(10 * time.Second)
	for sink.count() < 9 { // bisect isolates the poison record, which then waits an hour to retry
		if time.Now().After(deadline) {
			t.Fatalf("the sink accepted %d records, want the 9 good ones before the stop", sink.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
	want := fmt.Sprintf("1%024d", 8)
	if n := len(r.checkpoints); n == 0 || r.checkpoints[n-1] != want {
		t.Errorf("checkpoints = %v, want the last accepted record %s checkpointed", r.checkpoints, want)
	}
}

// While a batch is stuck, a shard whose other records are all filtered out stops reading once the
// records the checkpoint cannot pass reach a bound, instead of holding its whole backlog in memory.
func TestDispatcherBoundsWhatAStuckBatchHoldsBack(t *testing.T) {
	r := &recorder{}
	d := newDispatcher(t, r)
	d.BatchSize = 1
	d.Filter = keyFilter("keep")
	release := make(chan struct{})
	d.Deliver = func(ctx context.Context, _ <-chan struct{}, _ sinks.Batch) error {
		select { // stuck until released
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	pages := make(chan shards.Page)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx, make(chan struct{}), pages) }()
	pages <- shards.Page{Records: []types.Record{rec(0, "keep", 0)}}
	sent := 1
	const page = 1000
	blocked := false
	for i := 0; i < 200 && !blocked; i++ { // up to 200,000 filtered-out records
		recs := make([]types.Record, page)
		for j := range recs {
			recs[j] = rec(sent+j, "drop", 0)
		}
		select {
		case pages <- shards.Page{Records: recs}:
			sent += page
		case <-time.After(2 * time.Second): // the dispatcher stopped reading
			blocked = true
		}
	}
	if !blocked {
		t.Fatalf("the dispatcher took %d records behind a stuck batch, want it to stop reading at a bound", sent)
	}
	if sent > 30_000 {
		t.Errorf("the dispatcher took %d records behind a stuck batch before it stopped reading, want at most about 20,000", sent)
	}
	close(release)
	close(pages)
	if err := <-errc; err != nil {
		t.Fatalf("Run() = %v after the batch was released", err)
	}
}

// TestDispatcherLanesKeepEachPartitionKeyInOrder: records of a table with a sort key. With the key
// schema known, lanes hash on the partition key alone, so each partition key's records travel in one
// batch; with it unknown, the shard uses one lane (hashing every key attribute would split one
// partition key's items over lanes in flight at once).
func TestDispatcherLanesKeepEachPartitionKeyInOrder(t *testing.T) {
	var recs []types.Record
	keyOf := map[string]string{} // sequence number -> partition key
	for i := range 40 {
		key := fmt.Sprint("user-", i%4)
		r := rec(i, key, 0)
		r.Dynamodb.Keys["sk"] = &types.AttributeValueMemberS{Value: fmt.Sprint("item-", i)}
		recs = append(recs, r)
		keyOf[*r.Dynamodb.SequenceNumber] = key
	}
	tests := []struct {
		name        string
		hashKey     string
		wantBatches int // one page, batch_size above it: one batch per lane used
	}{
		{name: "lanes hash on the partition key when it is known", hashKey: "pk", wantBatches: 0},
		{name: "an unknown key schema makes one lane", hashKey: "", wantBatches: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			d := newDispatcher(t, r)
			d.BatchSize, d.Lanes, d.HashKey = 100, 4, tt.hashKey
			if err := d.Run(context.Background(), make(chan struct{}), pagesOf(recs, 40, true)); err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			batchOf := map[string]int{} // partition key -> the batch that carried it
			for i, b := range r.batches {
				for _, seq := range b {
					key := keyOf[seq]
					if j, ok := batchOf[key]; ok && j != i {
						t.Errorf("%s's records were split over batches %d and %d, in flight at once", key, j, i)
					}
					batchOf[key] = i
				}
				for k := 1; k < len(b); k++ {
					if b[k] <= b[k-1] {
						t.Errorf("batch %d out of order: %s after %s", i, b[k], b[k-1])
					}
				}
			}
			if tt.wantBatches > 0 && len(r.batches) != tt.wantBatches {
				t.Errorf("%d batches, want %d", len(r.batches), tt.wantBatches)
			}
			if tt.wantBatches == 0 && len(r.batches) < 2 {
				t.Errorf("%d batches, want the four keys spread over more than one lane", len(r.batches))
			}
		})
	}
}
