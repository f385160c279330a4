package dispatch

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/failure"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

func TestWindowStartIsAlignedToTheEpoch(t *testing.T) {
	at := func(sec, ms int64) time.Time { return time.Unix(sec, ms*int64(time.Millisecond)) }
	tests := []struct {
		name string
		t    time.Time
		size time.Duration
		want time.Time
	}{
		{"on a boundary", at(1_700_000_000, 0), 5 * time.Second, at(1_700_000_000, 0)},
		{"just before the next", at(1_700_000_004, 999), 5 * time.Second, at(1_700_000_000, 0)},
		{"the next one", at(1_700_000_005, 0), 5 * time.Second, at(1_700_000_005, 0)},
		{"7 s windows count from the epoch, not from year 1", at(13, 0), 7 * time.Second, at(7, 0)},
		{"15 minutes", at(1_700_000_999, 0), 15 * time.Minute, at(1_700_000_100, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := windowStart(tt.t, tt.size); !got.Equal(tt.want) {
				t.Errorf("windowStart(%s, %s) = %s, want %s", tt.t.UTC(), tt.size, got, tt.want.UTC())
			}
		})
	}
}

// base is the start of a 10 s window, long past: every window of the tests has ended.
var base = time.Unix(1_700_000_000, 0).UTC()

const size = 10 * time.Second

// wrec is record i of a shard, created at base+at, whose new image has the number n.
func wrec(i int, at time.Duration, n int) types.Record {
	r := rec(i, "k", 0)
	created := base.Add(at)
	r.Dynamodb.ApproximateCreationDateTime = &created
	r.Dynamodb.NewImage["n"] = &types.AttributeValueMemberN{Value: strconv.Itoa(n)}
	return r
}

// call is what the summing handler was sent.
type call struct {
	start        time.Time
	seqs         []string
	stateIn      string
	final, early bool
	failed       bool
}

// summer is a handler that sums attribute n per window into state["sum"], as a user's would; it
// fails the first call that holds a record of failOnce (after summing it: the sum is lost).
type summer struct {
	mu       sync.Mutex
	calls    []call
	failOnce string
	// partialOnce makes the first call holding this record answer a partial batch response that
	// reports it failed, with the state of the records before it.
	partialOnce string
}

// partialAt is the index of record seq in b, if b holds it.
func (s *summer) partialAt(b sinks.Batch, seq string) (int, bool) {
	for i, r := range b.Records {
		if r.Change.SequenceNumber == seq {
			return i, true
		}
	}
	return 0, false
}

func (s *summer) Deliver(_ context.Context, b sinks.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := b.Window
	if w == nil {
		return errors.New("no window")
	}
	c := call{start: w.Start, stateIn: w.State["sum"], final: w.Final, early: w.TerminatedEarly}
	for _, r := range b.Records {
		c.seqs = append(c.seqs, r.Change.SequenceNumber)
	}
	counted := b.Records
	var partial error
	if i, ok := s.partialAt(b, s.partialOnce); ok {
		partial = &sinks.BatchError{Failed: []string{s.partialOnce}}
		counted, s.partialOnce = b.Records[:i], ""
	}
	sum, _ := strconv.Atoi(w.State["sum"])
	for _, r := range counted {
		n, _ := strconv.Atoi(r.Change.NewImage["n"].Number())
		sum += n
		if r.Change.SequenceNumber == s.failOnce {
			c.failed, s.failOnce = true, ""
		}
	}
	s.calls = append(s.calls, c)
	if c.failed {
		return errors.New("handler failed")
	}
	w.State = map[string]string{"sum": strconv.Itoa(sum)}
	return partial
}

func (s *summer) Close(context.Context) error { return nil }

func (s *summer) snapshot() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// finals returns each final call's window start -> the total it was sent, and how often each
// window had a final call.
func finals(calls []call) (map[time.Time]string, map[time.Time]int) {
	totals, count := map[time.Time]string{}, map[time.Time]int{}
	for _, c := range calls {
		if c.final {
			totals[c.start] = c.stateIn
			count[c.start]++
		}
	}
	return totals, count
}

// memWindows is a WindowStore in memory.
type memWindows struct {
	mu sync.Mutex
	w  map[string]WindowState
}

func (m *memWindows) LoadWindow(_ context.Context, id string) (WindowState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w[id], nil
}

func (m *memWindows) SaveWindow(_ context.Context, id string, w WindowState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.w == nil {
		m.w = map[string]WindowState{}
	}
	m.w[id] = w
	return nil
}

func windowDispatcher(t *testing.T, s *summer, store WindowStore) (*Dispatcher, *recorder) {
	pol := &failure.Policy{Sink: s, MaxRetryAttempts: -1, Backoff: func(int) time.Duration { return time.Millisecond },
		Log: zaptest.NewLogger(t)}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.BatchSize, d.Tumbling, d.Deliver, d.Final, d.Windows = 2, size, pol.Deliver, s.Deliver, store
	d.CheckpointBackoff = func(int) time.Duration { return time.Millisecond }
	return d, r
}

func TestTumblingWindowsCarryStateAndEndWithOneFinalCall(t *testing.T) {
	recs := []types.Record{
		wrec(0, 1*time.Second, 1), wrec(1, 2*time.Second, 2), wrec(2, 9*time.Second, 4), // window 0: 7
		wrec(3, 10*time.Second, 10), wrec(4, 15*time.Second, 20), // window 1: 30
		wrec(5, 35*time.Second, 100), // window 3: 100, closed by the shard's end
	}
	s := &summer{}
	d, _ := windowDispatcher(t, s, nil)
	if err := d.Run(context.Background(), nil, pagesOf(recs, 6, true)); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	calls := s.snapshot()
	for _, c := range calls {
		for _, seq := range c.seqs {
			i, _ := strconv.Atoi(seq[1:])
			if got := windowStart(recs[i].Dynamodb.ApproximateCreationDateTime.UTC(), size); !got.Equal(c.start) {
				t.Errorf("record %d (window %s) was sent in window %s: a batch spans two windows", i, got, c.start)
			}
		}
		if c.final && len(c.seqs) > 0 {
			t.Errorf("final call of %s carried records %v", c.start, c.seqs)
		}
	}
	totals, count := finals(calls)
	want := map[time.Time]string{base: "7", base.Add(size): "30", base.Add(3 * size): "100"}
	for start, total := range want {
		if totals[start] != total || count[start] != 1 {
			t.Errorf("window %s: %d final call(s) with total %q, want one with %q", start, count[start], totals[start], total)
		}
	}
	if len(totals) != len(want) {
		t.Errorf("final calls for windows %v, want %v", totals, want)
	}
	last := calls[len(calls)-1]
	if !last.final || !last.early || !last.start.Equal(base.Add(3*size)) {
		t.Errorf("last call = %+v, want the final call of the last window, terminated early by the shard's end", last)
	}
	for _, c := range calls[:len(calls)-1] {
		if c.early {
			t.Errorf("call %+v is marked terminated early; only the shard's end does that", c)
		}
	}
}

// Lambda: a retried call carries the state of the last successful call, not what the failed call
// computed.
func TestTumblingWindowRetryCarriesTheLastSuccessfulState(t *testing.T) {
	recs := []types.Record{wrec(0, 0, 1), wrec(1, time.Second, 2), wrec(2, 2*time.Second, 4), wrec(3, 3*time.Second, 8)}
	s := &summer{failOnce: seqOf(2)}
	d, _ := windowDispatcher(t, s, nil)
	if err := d.Run(context.Background(), nil, pagesOf(recs, 4, true)); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	calls := s.snapshot()
	var failed, retry *call
	for i := range calls {
		if calls[i].failed {
			failed, retry = &calls[i], &calls[i+1]
			break
		}
	}
	if failed == nil {
		t.Fatalf("calls = %+v: the handler never failed", calls)
	}
	if failed.stateIn != "3" || retry.stateIn != "3" {
		t.Errorf("the failed call got state %q and its retry %q, want both 3 (the last successful call's)", failed.stateIn, retry.stateIn)
	}
	if totals, _ := finals(calls); totals[base] != "15" {
		t.Errorf("final total = %q, want 15: each record counted once", totals[base])
	}
}

// A restart in the middle of a window: the stored state goes on, and the records it covers that
// the checkpoint had not passed are not counted again.
func TestTumblingWindowStateSurvivesARestart(t *testing.T) {
	store := &memWindows{}
	recs := []types.Record{wrec(0, 0, 1), wrec(1, time.Second, 2), wrec(2, 2*time.Second, 4), wrec(3, 3*time.Second, 8), wrec(4, size, 16)}
	first := &summer{}
	d, _ := windowDispatcher(t, first, store)
	pages := make(chan shards.Page, 1)
	pages <- shards.Page{Records: recs[:3]}
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pages) }()
	waitUntil(t, "the first run stored the state of its 3 records", func() bool {
		w, _ := store.LoadWindow(context.Background(), d.ShardID)
		return w.Through == seqOf(2)
	})
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("first Run() = %v, want ErrStopped", err)
	}

	second := &summer{}
	d2, _ := windowDispatcher(t, second, store)
	// The checkpoint had passed record 0 only: records 1 and 2 are read again.
	if err := d2.Run(context.Background(), nil, pagesOf(recs[1:], 4, true)); err != nil {
		t.Fatalf("second Run() = %v", err)
	}
	calls := second.snapshot()
	for _, c := range calls {
		for _, seq := range c.seqs {
			if seq == seqOf(1) || seq == seqOf(2) {
				t.Errorf("record %s was sent again after the restart, though the stored state covers it", seq)
			}
		}
	}
	totals, count := finals(calls)
	if totals[base] != "15" || count[base] != 1 || totals[base.Add(size)] != "16" {
		t.Errorf("final totals = %v (counts %v), want %s: 15 and %s: 16, one final each", totals, count, base, base.Add(size))
	}
}

// Once a read that came back after a window's end leaves nothing of it to send, the window's final
// call is made without waiting for a record of a later window.
func TestTumblingWindowEndsWhenTimePassesItsEnd(t *testing.T) {
	s := &summer{}
	d, _ := windowDispatcher(t, s, nil)
	pages := make(chan shards.Page, 2)
	pages <- shards.Page{Records: []types.Record{wrec(0, 0, 5)}, ReadAt: base.Add(time.Second)}
	pages <- shards.Page{ReadAt: time.Now()} // long after the window's end
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background(), stop, pages) }()
	waitUntil(t, "the window's final call", func() bool { _, n := finals(s.snapshot()); return n[base] == 1 })
	close(stop)
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run() = %v, want ErrStopped", err)
	}
	calls := s.snapshot()
	if last := calls[len(calls)-1]; !last.final || last.early || last.stateIn != "5" {
		t.Errorf("last call = %+v, want a final call (not early) with the state 5", last)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With report_batch_item_failures, a partial batch response's state is kept: the records before the
// failed one count once, and the failed ones are sent again with that state.
func TestTumblingWindowPartialResponseKeepsItsState(t *testing.T) {
	recs := []types.Record{wrec(0, 0, 1), wrec(1, time.Second, 2), wrec(2, 2*time.Second, 4), wrec(3, 3*time.Second, 8)}
	s := &summer{partialOnce: seqOf(1)}
	d, _ := windowDispatcher(t, s, nil)
	pol := &failure.Policy{Sink: s, MaxRetryAttempts: -1, ReportBatchItemFailures: true,
		Backoff: func(int) time.Duration { return time.Millisecond }, Log: zaptest.NewLogger(t)}
	d.Deliver = pol.Deliver
	if err := d.Run(context.Background(), nil, pagesOf(recs, 4, true)); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	calls := s.snapshot()
	if len(calls) < 2 || calls[1].stateIn != "1" || len(calls[1].seqs) == 0 || calls[1].seqs[0] != seqOf(1) {
		t.Errorf("calls = %+v, want the second to resend record 1 with state 1 (record 0's, which the partial answer kept)", calls)
	}
	if totals, _ := finals(calls); totals[base] != "15" {
		t.Errorf("final total = %q, want 15: each record counted once", totals[base])
	}
}
