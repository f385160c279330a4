package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// windowCall is one call the summing handler got.
type windowCall struct {
	shard, start string
	stateIn      string
	keys         []string
	final, early bool
	failed       bool
}

// summingHandler is a tumbling window handler as a user writes it: it adds attribute n of each
// record to state["sum"] and answers the new state. The first call holding key failOnce fails
// (500) after adding it up, as a handler that crashes before answering.
type summingHandler struct {
	srv      *httptest.Server
	mu       sync.Mutex
	calls    []windowCall
	failOnce string
}

func newSummingHandler(t *testing.T, failOnce string) *summingHandler {
	h := &summingHandler{failOnce: failOnce}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *summingHandler) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev events.DynamoDBTimeWindowEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sum, _ := strconv.Atoi(ev.State["sum"])
	c := windowCall{shard: ev.ShardID, start: ev.Window.Start.UTC().Format(time.RFC3339), stateIn: ev.State["sum"],
		final: ev.IsFinalInvokeForWindow, early: ev.IsWindowTerminatedEarly}
	for _, rec := range ev.Records {
		n, _ := strconv.Atoi(rec.Change.NewImage["n"].Number())
		sum += n
		k := rec.Change.Keys["pk"].String()
		c.keys = append(c.keys, k)
		c.failed = c.failed || k == h.failOnce
	}
	h.mu.Lock()
	if c.failed {
		h.failOnce = ""
	}
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	if c.failed {
		http.Error(w, "handler crashed", 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(events.DynamoDBTimeWindowEventResponse{
		TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: map[string]string{"sum": strconv.Itoa(sum)}},
	})
}

func (h *summingHandler) snapshot() []windowCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]windowCall(nil), h.calls...)
}

// finals returns the final calls by shard and window start.
func (h *summingHandler) finals() map[string][]windowCall {
	out := map[string][]windowCall{}
	for _, c := range h.snapshot() {
		if c.final {
			out[c.shard+" "+c.start] = append(out[c.shard+" "+c.start], c)
		}
	}
	return out
}

// seen reports whether a successful call carried key.
func (h *summingHandler) seen(key string) bool {
	for _, c := range h.snapshot() {
		for _, k := range c.keys {
			if k == key && !c.failed {
				return true
			}
		}
	}
	return false
}

// The windows lie an hour ahead, so that no window ends by the clock during the test: each one ends
// when a record of a later window arrives, or when its shard ends, which makes the calls exact.
func TestTumblingWindowsSumAcrossARestartAndARollover(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Totals", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	const size = 5 * time.Second
	w0 := time.Now().Add(time.Hour).Truncate(size)
	put := func(shard, key string, window, n int) {
		item := streamstest.Item{"pk": streamstest.S(key), "n": &types.AttributeValueMemberN{Value: strconv.Itoa(n)}}
		rec := streamstest.Insert(streamstest.Item{"pk": streamstest.S(key)}, item)
		rec.CreatedAt = w0.Add(time.Duration(window)*size + time.Second)
		st.Put(shard, rec)
	}
	root := st.OpenShard("")
	put(root, "a1", 0, 1)
	put(root, "a2", 0, 2)
	put(root, "a3", 0, 4)

	h := newSummingHandler(t, "b1")
	cfg := pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: h.srv.URL, BatchSize: 2,
		Extra: "    tumbling_window: 5s\n"}.yaml(t)
	p := startPoller(t, cfg)
	waitFor(t, "window 0's first records", time.Minute, func() bool { return h.seen("a3") })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("poller exited with %d, want 0", code)
	}

	// After the restart, in the middle of window 0: the rest of it, a retried call, window 1, and
	// the rollover, which ends the root shard in window 1.
	put(root, "b1", 0, 8)
	put(root, "b2", 0, 16)
	put(root, "c1", 1, 32)
	put(root, "c2", 1, 64)
	child := st.Rollover(root)
	put(child, "d1", 1, 128)
	put(child, "e1", 2, 256)
	startPoller(t, cfg)
	waitFor(t, "the child's window 1 to end", time.Minute, func() bool { return h.seen("e1") })

	key := func(shard string, window int) string {
		return shard + " " + w0.Add(time.Duration(window)*size).UTC().Format(time.RFC3339)
	}
	finals := h.finals()
	want := []struct {
		key, total string
		early      bool
	}{
		{key(root, 0), "31", false},
		{key(root, 1), "96", true},
		{key(child, 1), "128", false},
	}
	for _, w := range want {
		got := finals[w.key]
		if len(got) != 1 || got[0].stateIn != w.total || got[0].early != w.early || len(got[0].keys) != 0 {
			t.Errorf("window %s: final calls %+v, want exactly one with sum %s, no records, terminated early %v", w.key, got, w.total, w.early)
		}
	}
	if len(finals) != len(want) {
		t.Errorf("final calls for %d windows (%v), want %d", len(finals), finals, len(want))
	}
	checkRetryState(t, h.snapshot(), "b1", "7")
}

// checkRetryState checks that the failed call holding key and the call that retried it both
// carried state sum want: the state of the last successful call.
func checkRetryState(t *testing.T, calls []windowCall, key, want string) {
	t.Helper()
	var carried []string
	for _, c := range calls {
		for _, k := range c.keys {
			if k == key {
				carried = append(carried, fmt.Sprintf("%s(failed=%v)", c.stateIn, c.failed))
			}
		}
	}
	if len(carried) < 2 || carried[0] != want+"(failed=true)" || carried[1] != want+"(failed=false)" {
		t.Errorf("calls holding %s carried states %v, want %s in the failed call and in its retry", key, carried, want)
	}
}
