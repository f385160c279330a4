package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/pkg/sinks"
)

// Lambda invokes when the batching window ends, when batch_size records are gathered, or when the
// gathered payload reaches the 6 MB limit: a full event does not wait for the window.
func TestDispatcherSendsAFullEventBeforeTheWindowEnds(t *testing.T) {
	recs := make([]types.Record, 10)
	for i := range recs {
		recs[i] = rec(i, "k", 300_000) // three fit in a 1 MB event
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.BatchSize, d.Window, d.MaxEventBytes = 10_000, time.Hour, 1<<20
	stop := make(chan struct{})
	three := make(chan struct{})
	var once sync.Once
	d.Deliver = func(ctx context.Context, s <-chan struct{}, b sinks.Batch) error {
		err := r.deliver(ctx, s, b)
		r.mu.Lock()
		if len(r.batches) == 3 {
			once.Do(func() { close(three) })
		}
		r.mu.Unlock()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pagesOf(recs, 10, false)) }()
	select {
	case <-three:
	case <-time.After(30 * time.Second):
		t.Fatal("no three full events within 30s: full events waited for the hour-long window")
	}
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
	for i, b := range r.batches {
		if len(b) != 3 {
			t.Errorf("batch %d has %d records, want 3 (a full 1 MB event)", i, len(b))
		}
	}
	if len(r.batches) != 3 {
		t.Errorf("delivered %d batches, want 3: the last record waits for its window", len(r.batches))
	}
}
