package shards_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/pkg/shards"
)

// TestReaderCadence checks when the reader calls GetRecords. The reader runs in a synctest bubble:
// time stands still while it talks to the server (a network wait is not a durable block), and moves
// only when the test sleeps, so call counts are checked at exact instants of fake time.
func TestReaderCadence(t *testing.T) {
	const poll = time.Hour
	type check struct {
		at    time.Duration // fake time since the reader started
		calls int           // GetRecords calls made by then
	}
	tests := []struct {
		name    string
		records int
		limit   int32
		checks  []check
	}{
		{
			name: "full pages are followed at once and the first page short of Limit waits PollInterval",
			// 5, 5, then 0: three calls at once, the fourth a PollInterval later.
			records: 10, limit: 5,
			checks: []check{{0, 3}, {poll - time.Nanosecond, 3}, {poll, 4}},
		},
		{
			name:    "a page short of Limit waits PollInterval before the next call",
			records: 3, limit: 5,
			checks: []check{{0, 1}, {poll - time.Nanosecond, 1}, {poll, 2}},
		},
		{
			name:    "an open shard with nothing new is polled once per PollInterval",
			records: 0, limit: 5,
			checks: []check{{0, 1}, {poll, 2}, {2 * poll, 3}, {2*poll + poll/2, 3}, {3 * poll, 4}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The server is outside the bubble; the client, its connections and the reader inside.
			srv := streamstest.New(t, streamstest.Options{})
			st := srv.CreateStream("T", streamstest.KeysOnly)
			shard := st.OpenShard("")
			want := st.Put(shard, streamstest.Inserts(tc.records)...)
			// A reader that polls without waiting never lets synctest.Wait return (it is always in a
			// network call): end it with ErrShardGone after many more calls than any check expects.
			srv.Fault(streamstest.OpGetRecords, func(r streamstest.Request) error {
				if r.Call > 100 {
					return streamstest.ResourceNotFound()
				}
				return nil
			})
			synctest.Test(t, func(t *testing.T) {
				// No kept-alive connections: their read loops would outlive the bubble.
				client := newClient(t, srv, false)
				r := &shards.Reader{
					API: client, StreamARN: st.ARN(), ShardID: shard, Start: shards.TrimHorizon,
					PollInterval: poll, Limit: tc.limit, Backoff: (&backoffLog{}).fn, Hooks: newObserver(),
				}
				ctx, cancel := context.WithCancel(t.Context())
				pages := make(chan shards.Page, 100) // the consumer never holds the reader up
				errc := make(chan error, 1)
				go func() { errc <- r.Run(ctx, pages) }()

				begin := time.Now()
				for _, c := range tc.checks {
					time.Sleep(begin.Add(c.at).Sub(time.Now()))
					synctest.Wait()
					if n := srv.Calls(streamstest.OpGetRecords); n != c.calls {
						t.Errorf("GetRecords calls after %v = %d, want %d", c.at, n, c.calls)
					}
				}
				cancel()
				if err := <-errc; !errors.Is(err, context.Canceled) {
					t.Errorf("Run() = %v, want context.Canceled", err)
				}
				close(pages)
				var got []string
				for p := range pages {
					got = append(got, seqsOf(p)...)
				}
				if len(got) != len(want) {
					t.Errorf("read %d records, want %d", len(got), len(want))
				}
			})
		})
	}
}
