package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// ageLog keeps the values the dispatcher reports to Hooks.OnIteratorAge.
type ageLog struct {
	mu   sync.Mutex
	last time.Time
	n    int
	// checkpoints are the checkpoints told to OnCheckpointWritten.
	checkpoints []string
}

func (a *ageLog) OnIteratorAge(_ string, t time.Time) { a.mu.Lock(); a.last = t; a.n++; a.mu.Unlock() }

func (*ageLog) OnRecordsPolled(string, int)          {}
func (*ageLog) OnRecordsFilteredOut(string, int)     {}
func (*ageLog) OnRecordsDropped(string, string, int) {}

func (a *ageLog) OnCheckpointWritten(_ string, seq string) {
	a.mu.Lock()
	a.checkpoints = append(a.checkpoints, seq)
	a.mu.Unlock()
}

func (a *ageLog) get() time.Time { a.mu.Lock(); defer a.mu.Unlock(); return a.last }

// TestDispatcherAgeOfAStuckShardGrows: while a batch retries, neither empty pages nor newer records
// read behind it make the shard look current: its age is that of its oldest record not yet done.
// Once that batch is done and an empty page comes, the shard is caught up (age 0).
func TestDispatcherAgeOfAStuckShardGrows(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	at := func(i int, created time.Time) types.Record {
		r := rec(i, "k", 0)
		r.Dynamodb.ApproximateCreationDateTime = &created
		return r
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	checkpointed := make(chan struct{}) // closed once the last record's checkpoint is written
	d.Checkpoint = func(ctx context.Context, seq string) error {
		err := r.checkpoint(ctx, seq)
		if seq == seqOf(2) {
			close(checkpointed)
		}
		return err
	}
	ages := &ageLog{}
	d.Hooks = ages
	release := make(chan struct{})
	d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
		if b.Records[0].Change.SequenceNumber == seqOf(0) {
			select { // the poison batch: "retrying" until the test lets it through
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return r.deliver(ctx, stop, b)
	}
	pages := make(chan shards.Page) // unbuffered: a send returns once the loop took the page
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pages) }()
	// A send of a page completes only after the loop handled (and reported the age of) the one before.
	send := func(p shards.Page) { pages <- p }
	barrier := func() { send(shards.Page{}) }

	send(shards.Page{Records: []types.Record{at(0, t0), at(1, t0)}})
	send(shards.Page{})
	send(shards.Page{Records: []types.Record{at(2, t0.Add(30*time.Minute))}})
	send(shards.Page{})
	barrier()
	if got := ages.get(); !got.Equal(t0) {
		t.Errorf("age mark with the first batch stuck after empty pages and a newer record = %v, want %v (the oldest record not done)", got, t0)
	}

	close(release)
	// Every record done (checkpointed), then an empty page: caught up.
	select {
	case <-checkpointed:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for the checkpoint of %s", seqOf(2))
	}
	barrier()
	barrier()
	if got := ages.get(); !got.IsZero() {
		t.Errorf("age mark once every record was done and an empty page came = %v, want zero (caught up)", got)
	}
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
}

func (a *ageLog) written() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.checkpoints...)
}

// TestDispatcherTellsEachCheckpointWritten: while the shard runs, the hooks learn the checkpoints
// written, the newest last, and never one that was not written.
func TestDispatcherTellsEachCheckpointWritten(t *testing.T) {
	r := &recorder{}
	d := newDispatcher(t, r)
	d.BatchSize = 2
	ages := &ageLog{}
	d.Hooks = ages
	recs := make([]types.Record, 5)
	for i := range recs {
		recs[i] = rec(i, "k", 0)
	}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pagesOf(recs, 5, false)) }()
	deadline := time.Now().Add(10 * time.Second)
	for w := ages.written(); len(w) == 0 || w[len(w)-1] != seqOf(4); w = ages.written() {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints told = %v, want the last one %s", w, seqOf(4))
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, seq := range ages.written() {
		if !slices.Contains(r.checkpoints, seq) {
			t.Errorf("checkpoint %s was told but never written (written: %v)", seq, r.checkpoints)
		}
	}
}
