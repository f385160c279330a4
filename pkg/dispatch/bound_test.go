package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/pkg/sinks"
)

func TestLaneRoom(t *testing.T) {
	tests := []struct {
		name                             string
		batchSize, sent, unwritten, want int
	}{
		{name: "a lane whose batches the checkpoint written passed may send a whole batch", batchSize: 100, sent: 0, unwritten: 0, want: 100},
		{name: "a lane whose last batch's checkpoint is being written may send the next", batchSize: 100, sent: 0, unwritten: 1, want: 100},
		{name: "a lane waits for the first of two batches beyond the checkpoint written", batchSize: 100, sent: 0, unwritten: 2, want: 0},
		{name: "a lane with a batch done behind a slower lane waits", batchSize: 100, sent: 100, unwritten: 1, want: 0},
		{name: "a lane whose last batch was small may send the rest of a batch", batchSize: 100, sent: 30, unwritten: 1, want: 70},
		{name: "never negative", batchSize: 10, sent: 25, unwritten: 1, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := laneRoom(tt.batchSize, tt.sent, tt.unwritten); got != tt.want {
				t.Errorf("laneRoom(%d, %d, %d) = %d, want %d", tt.batchSize, tt.sent, tt.unwritten, got, tt.want)
			}
		})
	}
}

// With parallelization_factor 4, one partition key's batch hangs in the sink while the other keys'
// records keep coming: the records that reached the sink beyond the last checkpoint written (what a
// kill -9 would deliver again) stay within 2 x batch_size x lanes (a lane's next batch may overlap
// its last one's checkpoint write), instead of growing with every batch the other lanes finish. Once the hung batch returns, every record is delivered and checkpointed.
func TestDispatcherBoundsRecordsDoneButNotCheckpointedBehindAStuckLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, batch, lanes = 3000, 10, 4
		recs := make([]types.Record, n)
		for i := range recs {
			recs[i] = rec(i, fmt.Sprint("k", i%40), 0)
		}
		var (
			mu        sync.Mutex
			sent      = map[string]bool{}
			written   string // the last checkpoint written
			maxBeyond int
		)
		release := make(chan struct{})
		r := &recorder{}
		d := newDispatcher(t, r)
		d.BatchSize, d.Lanes = batch, lanes
		d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
			mu.Lock()
			stuck := false
			for _, x := range b.Records {
				sent[x.Change.SequenceNumber] = true
				stuck = stuck || keyOfRec(x) == "k0"
			}
			beyond := 0
			for seq := range sent {
				if seq > written { // equal-length numbers: string order is numeric order
					beyond++
				}
			}
			maxBeyond = max(maxBeyond, beyond)
			mu.Unlock()
			if stuck {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return r.deliver(ctx, stop, b)
		}
		d.Checkpoint = func(ctx context.Context, seq string) error {
			mu.Lock()
			written = seq
			mu.Unlock()
			return r.checkpoint(ctx, seq)
		}
		errc := make(chan error, 1)
		go func() { errc <- d.Run(context.Background(), make(chan struct{}), pagesOf(recs, 100, true)) }()

		synctest.Wait() // the k0 batch hangs; everything else that may run has run
		mu.Lock()
		if maxBeyond > 2*batch*lanes {
			t.Errorf("%d records reached the sink beyond the last checkpoint written (%s) while one lane hung, want at most 2 x batch_size x lanes = %d",
				maxBeyond, written, 2*batch*lanes)
		}
		mu.Unlock()

		close(release)
		if err := <-errc; err != nil {
			t.Fatalf("Run() = %v, want nil (shard done)", err)
		}
		if want := fmt.Sprintf("1%024d", n-1); len(r.checkpoints) == 0 || r.checkpoints[len(r.checkpoints)-1] != want {
			t.Errorf("last checkpoint = %v, want %s", r.checkpoints[len(r.checkpoints)-1:], want)
		}
		if len(sent) != n {
			t.Errorf("%d records reached the sink, want all %d", len(sent), n)
		}
	})
}
