package shards_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/goleak"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/shards"
)

// Readers run in goroutines: every one of them must have ended when the tests do.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// patience bounds every wait on the code under test. It is a guard against a hang, never a pause:
// a passing test does not come near it.
const patience = 10 * time.Second

// t0 starts every manual clock, so shard IDs are reproducible.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// newClient is the real SDK client pointed at srv. Its own retryer is off, so every injected fault
// reaches the code under test and every call it makes is counted once by the server. keepAlive false
// closes each connection after its call (for synctest bubbles, which connections must not outlive).
func newClient(t *testing.T, srv *streamstest.Server, keepAlive bool) *dynamodbstreams.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = !keepAlive
	t.Cleanup(tr.CloseIdleConnections)
	return dynamodbstreams.NewFromConfig(testenv.AWSConfig(), func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = &http.Client{Transport: bufferedBodies{tr}}
	})
}

// bufferedBodies hands the transport a copy of each request body that cannot be closed under it.
//
// Without it about one call in a few hundred fails with "use of closed network connection": the
// transport reads a Content-Length body once more after sending it (to check for extra bytes), and
// when the server's answer arrives first the SDK has closed the body by then; the failed read makes
// the transport close the connection the answer is being read from (aws-sdk-go-v2 issues 1825 and
// 2737). The SDK's default retryer retries that error; these tests turn the retryer off to see
// every fault, so they remove the race instead.
type bufferedBodies struct{ next http.RoundTripper }

func (b bufferedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return b.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close() // a RoundTripper closes the body it was given, even on error
	if err != nil {
		return nil, fmt.Errorf("buffer request body: %w", err)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	return b.next.RoundTrip(out)
}

// countingObserver counts what a Reader reports.
type countingObserver struct {
	mu      sync.Mutex
	results map[string]int
	trimmed int
	// memoryWaits counts GetRecords calls held back by the shard's byte budget.
	memoryWaits int
}

var _ shards.Hooks = (*countingObserver)(nil)

func newObserver() *countingObserver { return &countingObserver{results: map[string]int{}} }

func (o *countingObserver) OnGetRecords(_, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.results[result]++
}

func (o *countingObserver) OnTrimmed(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.trimmed++
}

func (o *countingObserver) OnMemoryWait(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.memoryWaits++
}

func (o *countingObserver) count(result string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.results[result]
}

func (o *countingObserver) trims() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.trimmed
}

// backoffLog is a Reader.Backoff that records the attempts it is asked for and waits d. When stop is
// set it is called with the number of calls so far, e.g. to cancel the reader after a few.
type backoffLog struct {
	d    time.Duration
	stop func(calls int)

	mu       sync.Mutex
	attempts []int
}

func (b *backoffLog) fn(attempt int) time.Duration {
	b.mu.Lock()
	b.attempts = append(b.attempts, attempt)
	n := len(b.attempts)
	b.mu.Unlock()
	if b.stop != nil {
		b.stop(n)
	}
	return b.d
}

func (b *backoffLog) asked() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.attempts...)
}

// running is a Reader.Run in its own goroutine, reading into an unbuffered channel: the reader waits
// for the test to take each page, as it waits for a slow consumer.
type running struct {
	pages  chan shards.Page
	done   chan struct{}
	err    error // set before done closes
	cancel context.CancelFunc
}

// start runs r until it returns; the test's cleanup cancels it and waits for it.
func start(t *testing.T, r *shards.Reader) *running {
	t.Helper()
	return startCtx(t, t.Context(), r)
}

// startCtx is start under ctx.
func startCtx(t *testing.T, ctx context.Context, r *shards.Reader) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	rn := &running{pages: make(chan shards.Page), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(rn.done)
		rn.err = r.Run(ctx, rn.pages)
	}()
	t.Cleanup(func() {
		cancel()
		<-rn.done
	})
	return rn
}

// next takes the reader's next page.
func (rn *running) next(t *testing.T) shards.Page {
	t.Helper()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case p := <-rn.pages:
		return p
	case <-rn.done:
		t.Fatalf("Run() = %v before the next page", rn.err)
	case <-timer.C:
		t.Fatalf("no page within %v", patience)
	}
	return shards.Page{}
}

// wait returns what Run returned.
func (rn *running) wait(t *testing.T) error {
	t.Helper()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case <-rn.done:
		return rn.err
	case p := <-rn.pages:
		t.Fatalf("page of %d records (End %v) when Run should have returned", len(p.Records), p.End)
	case <-timer.C:
		t.Fatalf("Run did not return within %v", patience)
	}
	return nil
}

// toEnd takes pages up to the one with End set and returns the sequence numbers read and the number
// of pages.
func (rn *running) toEnd(t *testing.T) ([]string, int) {
	t.Helper()
	var seqs []string
	for pages := 1; ; pages++ {
		p := rn.next(t)
		seqs = append(seqs, seqsOf(p)...)
		if p.End {
			return seqs, pages
		}
	}
}

func seqsOf(p shards.Page) []string {
	seqs := make([]string, len(p.Records))
	for i, r := range p.Records {
		seqs[i] = aws.ToString(r.Dynamodb.SequenceNumber)
	}
	return seqs
}

// holdCall makes call n of op wait at the server, before it is answered, until release is called
// (or the test ends). The answer is computed after the release, so the test can change the stream
// or the clock in between, at a known point of the reader's progress.
func holdCall(t *testing.T, srv *streamstest.Server, op streamstest.Op, n int) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	srv.Fault(op, func(r streamstest.Request) error {
		if r.Call == n {
			select {
			case <-ch:
			case <-r.Context().Done():
			}
		}
		return nil
	})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}
