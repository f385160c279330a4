package dispatch

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/membudget"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// The reader charges each page at an estimate; the dispatcher swaps it for the queued records' event
// JSON size, holds them until they are done, and gives everything back by the end of the shard.
// Filtered-out records hold nothing.
func TestDispatcherHoldsRecordsAtTheirEventSizeUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := make([]types.Record, 6)
		for i := range recs {
			recs[i] = rec(i, map[bool]string{true: "keep", false: "drop"}[i%2 == 0], 10_000)
		}
		var want int64 // the kept records' event JSON size
		for i := 0; i < len(recs); i += 2 {
			r, _ := event.FromStreams(recs[i], "arn:stream")
			b, _ := event.AppendJSON(nil, &r)
			want += int64(len(b))
		}
		acct := membudget.New(1<<30).Open(1<<30, nil)
		page := shards.Page{Records: recs, Bytes: shards.PageBytes(recs)}
		acct.Charge(page.Bytes) // as the reader does
		pages := make(chan shards.Page, 2)
		pages <- page

		release := make(chan struct{})
		r := &recorder{}
		d := newDispatcher(t, r)
		d.Filter, d.Memory = keyFilter("keep"), acct
		d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
			<-release
			return r.deliver(ctx, stop, b)
		}
		errc := make(chan error, 1)
		go func() { errc <- d.Run(context.Background(), make(chan struct{}), pages) }()
		synctest.Wait()
		if got := acct.Held(); got != want {
			t.Errorf("held while the batch is in flight = %d, want the kept records' event size %d", got, want)
		}
		close(release)
		pages <- shards.Page{End: true}
		if err := <-errc; err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
		if got := acct.Held(); got != 0 {
			t.Errorf("held after the shard ended = %d, want 0", got)
		}
	})
}

// With a batching window, a lane waits to fill its batch; once the memory budget stops the reader no
// more records can come, so it sends what it holds at once.
func TestDispatcherSendsBeforeTheWindowWhenTheMemoryBudgetIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := []types.Record{rec(0, "k", 1000), rec(1, "k", 1000)}
		acct := membudget.New(1<<30).Open(100, nil) // the page alone passes it
		page := shards.Page{Records: recs, Bytes: shards.PageBytes(recs)}
		acct.Charge(page.Bytes)
		pages := make(chan shards.Page, 1)
		pages <- page
		r := &recorder{}
		d := newDispatcher(t, r)
		d.Window, d.Memory = time.Hour, acct
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, make(chan struct{}), pages) }()
		synctest.Wait() // fake time stands still until the window's timer is all that is left
		r.mu.Lock()
		sent := len(r.batches)
		r.mu.Unlock()
		if sent != 1 {
			t.Errorf("batches sent before the window ended = %d, want 1", sent)
		}
		cancel()
		<-errc
	})
}
