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
		stagger func(time.Duration) time.Duration
		pace    func(time.Duration) time.Duration
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
		{
			name:    "a Stagger is added once, to the first wait, and the cadence holds after it",
			records: 0, limit: 5, stagger: func(p time.Duration) time.Duration { return p / 2 },
			checks: []check{{0, 1}, {poll + poll/2 - time.Nanosecond, 1}, {poll + poll/2, 2},
				{2*poll + poll/2 - time.Nanosecond, 2}, {2*poll + poll/2, 3}, {3*poll + poll/2, 4}},
		},
		{
			name: "a Pace stretches the wait after a page short of Limit, not the call after a full page",
			// 5, 5, then 0: three calls at once (the Pace holds none of them up), the fourth three
			// PollIntervals later.
			records: 10, limit: 5, pace: func(d time.Duration) time.Duration { return 3 * d },
			checks: []check{{0, 3}, {3*poll - time.Nanosecond, 3}, {3 * poll, 4}, {6*poll - time.Nanosecond, 4}, {6 * poll, 5}},
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
					Stagger: tc.stagger, Pace: tc.pace,
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
				stopCadence(t, cancel, errc, pages, len(want))
			})
		})
	}
}

// TestReaderIdleBackOff checks idle_poll_interval on the server's own count of GetRecords calls,
// at exact instants of fake time (see TestReaderCadence): an idle shard backs off to one call per
// IdlePollInterval, and records arriving bring it back to PollInterval at once.
func TestReaderIdleBackOff(t *testing.T) {
	const poll, idle = 250 * time.Millisecond, time.Second
	srv := streamstest.New(t, streamstest.Options{})
	st := srv.CreateStream("T", streamstest.KeysOnly)
	shard := st.OpenShard("")
	synctest.Test(t, func(t *testing.T) {
		client := newClient(t, srv, false)
		r := &shards.Reader{
			API: client, StreamARN: st.ARN(), ShardID: shard, Start: shards.TrimHorizon,
			PollInterval: poll, IdlePollInterval: idle, Limit: 100, Backoff: (&backoffLog{}).fn, Hooks: newObserver(),
		}
		ctx, cancel := context.WithCancel(t.Context())
		pages := make(chan shards.Page, 1000)
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx, pages) }()
		begin := time.Now()
		calls := func(at time.Duration) int {
			t.Helper()
			time.Sleep(begin.Add(at).Sub(time.Now()))
			synctest.Wait()
			return srv.Calls(streamstest.OpGetRecords)
		}

		// Calls at 0, 250, 500, 750 ms (four empty pages at poll_interval), 1.25 s (after 500 ms),
		// then once a second: 2.25 s, 3.25 s, ...
		if n := calls(time.Second); n != 4 {
			t.Errorf("GetRecords calls in the first second = %d, want 4 (poll_interval until the back-off)", n)
		}
		from := calls(10 * time.Second)
		if n := calls(70*time.Second) - from; n != 60 {
			t.Errorf("GetRecords calls of an idle shard in 60 s = %d, want 60 (one per idle_poll_interval)", n)
		}

		// A record written at 70.5 s is read by the call at 71.25 s; the shard polls at
		// poll_interval from there: 71.5, 71.75 and 72 s (the empty pages before the back-off).
		calls(70*time.Second + 500*time.Millisecond)
		st.Put(shard, streamstest.Inserts(1)...)
		before := calls(71*time.Second + 250*time.Millisecond - time.Nanosecond)
		if n := calls(72*time.Second) - before; n != 4 {
			t.Errorf("GetRecords calls in the 750 ms after records arrived = %d, want 4 (back to poll_interval)", n)
		}
		stopCadence(t, cancel, errc, pages, 1)
	})
}

// stopCadence cancels a reader whose pages were buffered in pages, checks that Run ended with
// context.Canceled and that it read want records.
func stopCadence(t *testing.T, cancel context.CancelFunc, errc <-chan error, pages chan shards.Page, want int) {
	t.Helper()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v, want context.Canceled", err)
	}
	close(pages)
	var got []string
	for p := range pages {
		got = append(got, seqsOf(p)...)
	}
	if len(got) != want {
		t.Errorf("read %d records, want %d", len(got), want)
	}
}
