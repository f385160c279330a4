package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// newHTTPSink returns an http sink for url, closed at the end of the test.
func newHTTPSink(t *testing.T, cfg HTTPConfig, rbif bool) *HTTP {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	s, err := NewHTTP(cfg, Deps{ReportBatchItemFailures: rbif})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// answer returns a server that answers every request with status and body.
func answer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPSendsTheLambdaEvent(t *testing.T) {
	var got struct {
		method, contentType, token, host string
		body                             []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.contentType, got.token, got.host = r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Token"), r.Host
		got.body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	s := newHTTPSink(t, HTTPConfig{URL: srv.URL + "/events", Headers: map[string]string{"X-Token": "secret", "Host": "api.example"}}, false)
	b := testBatch("1", 3)

	require.NoError(t, s.Deliver(context.Background(), b))

	assert.Equal(t, http.MethodPost, got.method)
	assert.Equal(t, "application/json", got.contentType)
	assert.Equal(t, "secret", got.token)
	assert.Equal(t, "api.example", got.host)
	var ev events.DynamoDBEvent
	require.NoError(t, json.Unmarshal(got.body, &ev))
	assert.Equal(t, b.Event(), ev, "the body decodes to the batch's Lambda event")
	assert.True(t, strings.HasPrefix(string(got.body), `{"Records":[{`), "body = %.40s", got.body)
}

func TestHTTPOutcomes(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		url := "http://" + l.Addr().String() + "/events"
		require.NoError(t, l.Close())
		return url
	}
	tests := []struct {
		name       string
		status     int
		body       string
		url        func(t *testing.T) string // overrides the server
		wantErr    []string
		wantStatus int
	}{
		{name: "a 200 answer is success", status: 200, body: "ok"},
		{name: "a 204 answer without body is success", status: 204},
		{name: "a 500 answer fails and says the URL, status and body", status: 500, body: "boom: db down",
			wantErr: []string{"POST http://", "/events", "status 500 Internal Server Error", `body "boom: db down"`}, wantStatus: 500},
		{name: "a 429 answer is a failure too", status: 429, wantErr: []string{"status 429"}, wantStatus: 429},
		{name: "a 302 answer is not success", status: 302, wantErr: []string{"status 302"}, wantStatus: 302},
		{name: "a long error body is cut to its start", status: 503, body: strings.Repeat("x", 10000),
			wantErr: []string{strings.Repeat("x", 512) + `..."`}, wantStatus: 503},
		{name: "a refused connection fails and names the URL", url: refused,
			wantErr: []string{"/events", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var url string
			if tt.url != nil {
				url = tt.url(t)
			} else {
				url = answer(t, tt.status, tt.body).URL + "/events"
			}
			s := newHTTPSink(t, HTTPConfig{URL: url}, false)
			err := s.Deliver(context.Background(), testBatch("1", 2))
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
			var he *HTTPError
			if tt.wantStatus != 0 {
				require.True(t, errors.As(err, &he), "Deliver() error = %v, want an *HTTPError", err)
				assert.Equal(t, tt.wantStatus, he.StatusCode)
			} else {
				assert.False(t, errors.As(err, &he))
			}
		})
	}
}

func TestHTTPTimeoutAndCancellation(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	t.Run("an endpoint that does not answer within the timeout fails the delivery", func(t *testing.T) {
		s := newHTTPSink(t, HTTPConfig{URL: srv.URL, Timeout: 100 * time.Millisecond}, false)
		start := time.Now()
		err := s.Deliver(context.Background(), testBatch("1", 1))
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "Deliver() error = %v, want DeadlineExceeded", err)
		assert.Contains(t, err.Error(), "no answer within 100ms")
		assert.Contains(t, err.Error(), srv.URL)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("a canceled context ends the delivery at once", func(t *testing.T) {
		s := newHTTPSink(t, HTTPConfig{URL: srv.URL, Timeout: time.Minute}, false)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Deliver(ctx, testBatch("1", 1)) }()
		cancel()
		err := <-done
		assert.True(t, errors.Is(err, context.Canceled), "Deliver() error = %v, want Canceled", err)
		assert.NotContains(t, err.Error(), "no answer within")
	})
}

func TestHTTPPartialBatchResponse(t *testing.T) {
	// The batch's sequence numbers are 7-0, 7-1, 7-2.
	tests := []struct {
		name       string
		body       string
		rbif       bool
		wantFailed []string // a *BatchError with these
		wantErr    string   // a whole-batch failure saying this
	}{
		{name: "one reported item is a partial failure", rbif: true,
			body: `{"batchItemFailures":[{"itemIdentifier":"7-1"}]}`, wantFailed: []string{"7-1"}},
		{name: "several items are reported in the order given, once each", rbif: true,
			body: `{"batchItemFailures":[{"itemIdentifier":"7-2"},{"itemIdentifier":"7-1"},{"itemIdentifier":"7-2"}]}`, wantFailed: []string{"7-2", "7-1"}},
		{name: "capitalised keys, as AWS's Go sample writes them, are understood", rbif: true,
			body: `{"BatchItemFailures":[{"ItemIdentifier":"7-0"}]}`, wantFailed: []string{"7-0"}},
		{name: "other keys next to the list are ignored", rbif: true,
			body: `{"state":{"a":1},"batchItemFailures":[{"itemIdentifier":"7-0","reason":"x"}]}`, wantFailed: []string{"7-0"}},
		{name: "an empty body is complete success", rbif: true, body: ""},
		{name: "a blank body is complete success", rbif: true, body: " \n"},
		{name: "an empty object is complete success", rbif: true, body: `{}`},
		{name: "null is complete success", rbif: true, body: `null`},
		{name: "a null list is complete success", rbif: true, body: `{"batchItemFailures":null}`},
		{name: "an empty list is complete success", rbif: true, body: `{"batchItemFailures":[]}`},
		{name: "a malformed body fails the whole batch", rbif: true, body: `{"batchItemFailures":[`, wantErr: "not a JSON object"},
		{name: "a body that is not an object fails the whole batch", rbif: true, body: `"ok"`, wantErr: "not a JSON object"},
		{name: "a list that is not a list fails the whole batch", rbif: true, body: `{"batchItemFailures":{"itemIdentifier":"7-0"}}`, wantErr: "is not a list"},
		{name: "an entry that is not an object fails the whole batch", rbif: true, body: `{"batchItemFailures":["7-0"]}`, wantErr: "batchItemFailures[0] is not an object"},
		{name: "an unknown identifier fails the whole batch", rbif: true,
			body: `{"batchItemFailures":[{"itemIdentifier":"7-0"},{"itemIdentifier":"9-9"}]}`, wantErr: `"9-9" is not the sequence number of a record in the batch`},
		{name: "a null identifier fails the whole batch", rbif: true, body: `{"batchItemFailures":[{"itemIdentifier":null}]}`, wantErr: "has no itemIdentifier"},
		{name: "an empty identifier fails the whole batch", rbif: true, body: `{"batchItemFailures":[{"itemIdentifier":""}]}`, wantErr: "itemIdentifier is empty"},
		{name: "a misspelt identifier key fails the whole batch", rbif: true, body: `{"batchItemFailures":[{"itemId":"7-0"}]}`, wantErr: "has no itemIdentifier"},
		{name: "a numeric identifier fails the whole batch", rbif: true, body: `{"batchItemFailures":[{"itemIdentifier":7}]}`, wantErr: "is not a string"},
		{name: "both spellings at once fail the whole batch", rbif: true,
			body: `{"batchItemFailures":[],"BatchItemFailures":[{"ItemIdentifier":"7-0"}]}`, wantErr: "both batchItemFailures and BatchItemFailures"},
		{name: "without report_batch_item_failures a partial response is ignored", rbif: false,
			body: `{"batchItemFailures":[{"itemIdentifier":"7-1"}]}`},
		{name: "without report_batch_item_failures a malformed body is ignored", rbif: false, body: `{{{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := answer(t, 200, tt.body)
			s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, tt.rbif)
			err := s.Deliver(context.Background(), testBatch("7", 3))
			var be *BatchError
			switch {
			case tt.wantFailed != nil:
				require.True(t, errors.As(err, &be), "Deliver() error = %v, want a *BatchError", err)
				assert.Equal(t, tt.wantFailed, be.Failed)
			case tt.wantErr != "":
				require.Error(t, err)
				assert.False(t, errors.As(err, &be), "Deliver() error = %v, want a whole-batch failure", err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), "the whole batch failed")
				assert.Contains(t, err.Error(), srv.URL)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestHTTPReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"batchItemFailures":[]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, true)

	for range 50 {
		require.NoError(t, s.Deliver(context.Background(), testBatch("1", 5)))
	}
	assert.Equal(t, int32(1), conns.Load(), "50 deliveries in a row use one connection")

	const workers = 8
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for range 25 {
				if err := s.Deliver(context.Background(), testBatch("1", 5)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	// The transport may dial one spare connection per waiting request when an idle one comes back
	// first, so allow two per worker: far from one per delivery (200), and with the default two idle
	// connections per host, eight workers keep reconnecting.
	assert.LessOrEqual(t, conns.Load(), int32(1+2*workers), "concurrent deliveries reuse their connections")
}

func TestHTTPEventSizeLimit(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, false)

	var l Limiter = s
	assert.Equal(t, 6*1024*1024, l.MaxEventBytes())

	b := testBatch("1", 20)
	big := events.NewStringAttribute(strings.Repeat("x", 400*1024))
	for i := range b.Records {
		b.Records[i].Change.NewImage["big"] = big
	}
	err := s.Deliver(context.Background(), b)
	require.ErrorContains(t, err, "over the 6291456 byte limit")
	assert.Zero(t, calls.Load(), "an oversized event is never sent")
}

func TestHTTPConcurrentDeliveriesAreSafe(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev events.DynamoDBEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range ev.Records {
			seen[rec.Change.SequenceNumber] = true
		}
	}))
	defer srv.Close()
	s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, false)
	var g errgroup.Group
	for i := range 16 {
		g.Go(func() error { return s.Deliver(context.Background(), testBatch(string(rune('a'+i)), 10)) })
	}
	require.NoError(t, g.Wait())
	assert.Len(t, seen, 160)
}

// BenchmarkHTTPDeliver measures deliveries of 100-record batches to a local endpoint that reads the
// body and answers 200, one at a time and from 8 goroutines.
func BenchmarkHTTPDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	s, err := NewHTTP(HTTPConfig{URL: srv.URL, Timeout: 10 * time.Second}, Deps{})
	require.NoError(b, err)
	defer s.Close(context.Background())
	batch := testBatch("1", 100)
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Deliver(context.Background(), batch); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
