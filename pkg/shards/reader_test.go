package shards_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/pkg/shards"
)

// readerEnv is one scenario: a server on a manual clock, a stream with one open shard, and what the
// reader reports.
type readerEnv struct {
	srv     *streamstest.Server
	clock   *streamstest.ManualClock
	client  *dynamodbstreams.Client
	st      *streamstest.Stream
	shard   string
	obs     *countingObserver
	backoff *backoffLog
}

// reader reads e.shard from start, limit records a call. PollInterval is short: scenarios that are
// about the poll cadence are in TestReaderCadence.
func (e *readerEnv) reader(start shards.Position, limit int32) *shards.Reader {
	return &shards.Reader{
		API: e.client, StreamARN: e.st.ARN(), ShardID: e.shard, Start: start,
		PollInterval: time.Millisecond, Limit: limit,
		Backoff: e.backoff.fn, Hooks: e.obs,
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *readerEnv)
	}{
		{"a closed shard is read once, in order, to an End page, and Run returns nil", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(25)...)
			e.st.CloseShard(e.shard)
			rn := start(t, e.reader(shards.TrimHorizon, 10))
			got, pages := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if n := e.srv.Calls(streamstest.OpGetRecords); pages != 3 || n != 3 {
				t.Errorf("pages, GetRecords calls = %d, %d; want 3, 3 (10, 10, then 5 with End)", pages, n)
			}
			if e.obs.count("ok") != 3 {
				t.Errorf("observed ok = %d, want 3", e.obs.count("ok"))
			}
		}},
		{"an empty closed shard gives one empty End page", func(t *testing.T, e *readerEnv) {
			e.st.CloseShard(e.shard)
			rn := start(t, e.reader(shards.TrimHorizon, 10))
			if p := rn.next(t); !p.End || len(p.Records) != 0 || p.ReadAt.IsZero() {
				t.Errorf("page = %d records, End %v, ReadAt %v; want 0, true, set", len(p.Records), p.End, p.ReadAt)
			}
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		}},
		{"a reader started after a checkpoint reads only what follows it", func(t *testing.T, e *readerEnv) {
			seqs := e.st.Put(e.shard, streamstest.Inserts(12)...)
			e.st.CloseShard(e.shard)
			rn := start(t, e.reader(shards.After(seqs[6]), 100))
			got, _ := rn.toEnd(t)
			if !slices.Equal(got, seqs[7:]) {
				t.Errorf("read %v, want %v", got, seqs[7:])
			}
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		}},
		{"an open shard's reader keeps polling for new records and returns ctx.Err() when canceled", func(t *testing.T, e *readerEnv) {
			first := e.st.Put(e.shard, streamstest.Inserts(3)...)
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			if got := seqsOf(rn.next(t)); !slices.Equal(got, first) {
				t.Fatalf("first page = %v, want %v", got, first)
			}
			later := e.st.Put(e.shard, streamstest.Inserts(2)...)
			p := rn.next(t)
			if got := seqsOf(p); !slices.Equal(got, later) || p.End {
				t.Fatalf("later page = %v (End %v), want %v (not End)", got, p.End, later)
			}
			rn.cancel()
			if err := rn.wait(t); !errors.Is(err, context.Canceled) {
				t.Errorf("Run() = %v, want context.Canceled", err)
			}
		}},
		{"an iterator that expires while the consumer holds a page is renewed after the last record read: none twice, none skipped", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(10)...)
			e.st.CloseShard(e.shard)
			release := holdCall(t, e.srv, streamstest.OpGetRecords, 2)
			rn := start(t, e.reader(shards.TrimHorizon, 4))
			got := seqsOf(rn.next(t))
			// The consumer took 16 minutes over the first page: the iterator call 2 carries is stale.
			e.clock.Advance(16 * time.Minute)
			release()
			rest, _ := rn.toEnd(t)
			got = append(got, rest...)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if n := e.srv.Calls(streamstest.OpGetShardIterator); n != 2 {
				t.Errorf("GetShardIterator calls = %d, want 2 (start, one renewal)", n)
			}
			if n := e.srv.Calls(streamstest.OpGetRecords); n != 4 {
				t.Errorf("GetRecords calls = %d, want 4 (4 records, expired, 4, then 2 with End)", n)
			}
		}},
		{"an expired iterator injected mid-shard is renewed after the last record read, without a backoff", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(9)...)
			e.st.CloseShard(e.shard)
			e.srv.Fault(streamstest.OpGetRecords, func(r streamstest.Request) error {
				if r.Call == 3 {
					return streamstest.ExpiredIterator()
				}
				return nil
			})
			rn := start(t, e.reader(shards.TrimHorizon, 3))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if n := e.srv.Calls(streamstest.OpGetShardIterator); n != 2 {
				t.Errorf("GetShardIterator calls = %d, want 2", n)
			}
			if a := e.backoff.asked(); len(a) != 0 {
				t.Errorf("Backoff asked for %v, want nothing: one expiry is renewed at once", a)
			}
		}},
		{"an iterator that expires on every call backs off instead of spinning", func(t *testing.T, e *readerEnv) {
			e.st.Put(e.shard, streamstest.Inserts(3)...)
			e.srv.Fault(streamstest.OpGetRecords, func(streamstest.Request) error { return streamstest.ExpiredIterator() })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			e.backoff.stop = func(calls int) {
				if calls == 3 {
					cancel()
				}
			}
			rn := startCtx(t, ctx, e.reader(shards.TrimHorizon, 100))
			if err := rn.wait(t); !errors.Is(err, context.Canceled) {
				t.Errorf("Run() = %v, want context.Canceled", err)
			}
			if got, want := e.backoff.asked(), []int{1, 2, 3}; !slices.Equal(got, want) {
				t.Errorf("Backoff asked for %v, want %v", got, want)
			}
			if n := e.srv.Calls(streamstest.OpGetRecords); n != 4 {
				t.Errorf("GetRecords calls = %d, want 4 (the first expiry renewed at once, then three backoffs)", n)
			}
		}},
		{"a start position already trimmed restarts at TRIM_HORIZON and is counted", func(t *testing.T, e *readerEnv) {
			seqs := e.st.Put(e.shard, streamstest.Inserts(10)...)
			e.st.CloseShard(e.shard)
			e.st.Trim(e.shard, 5)
			rn := start(t, e.reader(shards.After(seqs[1]), 100))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, seqs[5:]) {
				t.Errorf("read %v, want %v (the horizon on)", got, seqs[5:])
			}
			if e.obs.trims() != 1 {
				t.Errorf("Trimmed() calls = %d, want 1", e.obs.trims())
			}
		}},
		{"an iterator at TRIM_HORIZON refused as trimmed restarts there without counting a loss", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(3)...)
			e.st.CloseShard(e.shard)
			e.srv.Fault(streamstest.OpGetRecords, func(r streamstest.Request) error {
				if r.Call == 1 {
					return streamstest.Trimmed()
				}
				return nil
			})
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if e.obs.trims() != 0 {
				t.Errorf("Trimmed() calls = %d, want 0: nothing before the horizon was skipped", e.obs.trims())
			}
		}},
		{"a position trimmed while the consumer holds a page restarts at TRIM_HORIZON and is counted", func(t *testing.T, e *readerEnv) {
			seqs := e.st.Put(e.shard, streamstest.Inserts(10)...)
			e.st.CloseShard(e.shard)
			release := holdCall(t, e.srv, streamstest.OpGetRecords, 2)
			rn := start(t, e.reader(shards.TrimHorizon, 2))
			got := seqsOf(rn.next(t))
			e.st.Trim(e.shard, 5) // the iterator of call 2 points at record 2, now trimmed
			release()
			rest, _ := rn.toEnd(t)
			got = append(got, rest...)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if want := append(slices.Clone(seqs[:2]), seqs[5:]...); !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if e.obs.trims() != 1 {
				t.Errorf("Trimmed() calls = %d, want 1", e.obs.trims())
			}
			if n := e.srv.Calls(streamstest.OpGetShardIterator); n != 2 {
				t.Errorf("GetShardIterator calls = %d, want 2 (start, TRIM_HORIZON)", n)
			}
		}},
		{"3 throttles then success: every record arrives and Backoff was asked for attempts 1, 2, 3", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(5)...)
			e.st.CloseShard(e.shard)
			e.srv.Fault(streamstest.OpGetRecords, streamstest.Times(3, streamstest.Throttle()))
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if got, want := e.backoff.asked(), []int{1, 2, 3}; !slices.Equal(got, want) {
				t.Errorf("Backoff asked for %v, want %v", got, want)
			}
			if e.obs.count("throttled") != 3 || e.obs.count("ok") != 1 || e.obs.count("error") != 0 {
				t.Errorf("observed %v, want 3 throttled, 1 ok", e.obs.results)
			}
		}},
		{"server errors back off like throttles and the attempt count restarts after a success", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(6)...)
			e.st.CloseShard(e.shard)
			e.srv.Fault(streamstest.OpGetRecords, func(r streamstest.Request) error {
				if r.Call == 1 || r.Call == 2 || r.Call == 4 {
					return streamstest.InternalError()
				}
				return nil
			})
			rn := start(t, e.reader(shards.TrimHorizon, 2))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if got, want := e.backoff.asked(), []int{1, 2, 1}; !slices.Equal(got, want) {
				t.Errorf("Backoff asked for %v, want %v", got, want)
			}
			if e.obs.count("error") != 3 || e.obs.count("ok") != 3 {
				t.Errorf("observed %v, want 3 error, 3 ok", e.obs.results)
			}
		}},
		{"a generic ThrottlingException counts as a throttle, not an error", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(2)...)
			e.st.CloseShard(e.shard)
			throttling := &streamstest.APIError{Code: "ThrottlingException", Message: "Rate exceeded", Status: 400}
			e.srv.Fault(streamstest.OpGetRecords, streamstest.Times(2, throttling))
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil || !slices.Equal(got, want) {
				t.Errorf("Run() = %v after reading %v, want nil after %v", err, got, want)
			}
			if e.obs.count("throttled") != 2 || e.obs.count("error") != 0 {
				t.Errorf("observed %v, want 2 throttled, no error", e.obs.results)
			}
		}},
		{"throttled GetShardIterator calls back off too", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(2)...)
			e.st.CloseShard(e.shard)
			e.srv.Fault(streamstest.OpGetShardIterator, streamstest.Times(2, streamstest.Throttle()))
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			got, _ := rn.toEnd(t)
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("read %v, want %v", got, want)
			}
			if got, want := e.backoff.asked(), []int{1, 2}; !slices.Equal(got, want) {
				t.Errorf("Backoff asked for %v, want %v", got, want)
			}
		}},
		{"ResourceNotFound from GetRecords gives ErrShardGone", func(t *testing.T, e *readerEnv) {
			e.st.Put(e.shard, streamstest.Inserts(2)...)
			e.srv.Fault(streamstest.OpGetRecords, streamstest.Times(1, streamstest.ResourceNotFound()))
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			if err := rn.wait(t); !errors.Is(err, shards.ErrShardGone) {
				t.Errorf("Run() = %v, want ErrShardGone", err)
			}
			if a := e.backoff.asked(); len(a) != 0 {
				t.Errorf("Backoff asked for %v, want nothing: a gone shard is not retried", a)
			}
		}},
		{"a previous reader's iterator is read on from, and an expired one falls back to Start", func(t *testing.T, e *readerEnv) {
			want := e.st.Put(e.shard, streamstest.Inserts(6)...)
			e.st.CloseShard(e.shard)
			first := e.reader(shards.TrimHorizon, 2)
			rn := start(t, first)
			page := rn.next(t)
			rn.cancel()
			<-rn.done

			r := e.reader(shards.TrimHorizon, 100)
			r.StartIterator = page.Next
			got, _ := start(t, r).toEnd(t)
			if !slices.Equal(got, want[2:]) {
				t.Errorf("read %v from the previous reader's iterator, want %v", got, want[2:])
			}
			e.clock.Advance(16 * time.Minute)
			r = e.reader(shards.TrimHorizon, 100)
			r.StartIterator = page.Next
			if got, _ := start(t, r).toEnd(t); !slices.Equal(got, want) {
				t.Errorf("read %v from an expired iterator, want %v (from Start)", got, want)
			}
		}},
		{"a shard the stream no longer lists gives ErrShardGone before any read", func(t *testing.T, e *readerEnv) {
			e.st.Put(e.shard, streamstest.Inserts(2)...)
			e.st.CloseShard(e.shard)
			e.st.Hide(e.shard)
			rn := start(t, e.reader(shards.TrimHorizon, 100))
			if err := rn.wait(t); !errors.Is(err, shards.ErrShardGone) {
				t.Errorf("Run() = %v, want ErrShardGone", err)
			}
			if n := e.srv.Calls(streamstest.OpGetRecords); n != 0 {
				t.Errorf("GetRecords calls = %d, want 0", n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := streamstest.NewManualClock(t0)
			srv := streamstest.New(t, streamstest.Options{Clock: clock})
			st := srv.CreateStream("T", streamstest.KeysOnly)
			tc.run(t, &readerEnv{
				srv: srv, clock: clock, client: newClient(t, srv, true), st: st, shard: st.OpenShard(""),
				obs: newObserver(), backoff: &backoffLog{},
			})
		})
	}
}

// closedShardAPI answers GetShardIterator with no iterator, as the service does for a closed shard
// with nothing after the position, which the test endpoint never does. Any GetRecords fails the test.
type closedShardAPI struct {
	t *testing.T
}

func (f closedShardAPI) GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	return &dynamodbstreams.GetShardIteratorOutput{}, nil
}

func (f closedShardAPI) GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.t.Errorf("unexpected GetRecords call after a nil shard iterator")
	return nil, errors.New("fake: unexpected GetRecords")
}

func TestReaderWithoutIterator(t *testing.T) {
	tests := []struct {
		name  string
		start shards.Position
	}{
		{"a nil iterator at a checkpoint ends the shard with an End page and no read", shards.After("100000000000000000001")},
		{"a nil iterator at TRIM_HORIZON ends the shard with an End page and no read", shards.TrimHorizon},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rn := start(t, &shards.Reader{
				API: closedShardAPI{t}, StreamARN: "arn", ShardID: "shardId-1", Start: tc.start,
				PollInterval: time.Hour, Limit: 100, Backoff: (&backoffLog{}).fn, Hooks: newObserver(),
			})
			if p := rn.next(t); !p.End || len(p.Records) != 0 {
				t.Errorf("page = %d records, End %v; want 0, true", len(p.Records), p.End)
			}
			if err := rn.wait(t); err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		})
	}
}
