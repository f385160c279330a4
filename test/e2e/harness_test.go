// Package e2e runs the poller binary as a user would, against DynamoDB Local (and the Streams test
// endpoint where DynamoDB Local cannot shape the stream), with an http sink that records what
// arrives.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/poller-dev/poller/internal/testenv"
)

var pollerBin string

// e2eVersion is stamped into the binary as a release build stamps it (-X main.version), so the tests
// see it reach what reports the version (poller_build_info).
const e2eVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) {
	os.Exit(testenv.MainWithPoller(m, &pollerBin, "-race", "-ldflags", "-X main.version="+e2eVersion))
}

// received is one record as the http sink saw it, in arrival order.
type received struct {
	Seq     string
	EventID string
	Key     string
	Batch   int       // which sink call
	From    string    // the call's X-Poller header (set per process with pipelineConfig.SinkExtra)
	At      time.Time // when the call arrived
}

// sink is an http sink that records every record it accepts. Delay slows each call down.
type sink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	recs  []received
	calls int
	delay time.Duration
	// fail, when set, makes a call fail with 500 (before recording) when it returns true.
	fail func(ev events.DynamoDBEvent) bool
	// answer, when set, answers a call itself when it returns a status other than 0 (the records
	// are then not recorded as accepted): e.g. a partial batch response.
	answer func(ev events.DynamoDBEvent) (status int, body string)
	// tried logs the records of every call, failed or not, in arrival order.
	tried [][]received
	// maxEvent is the largest event body seen.
	maxEvent int
	// inflight counts requests being handled: a request from a killed poller may still be recorded.
	inflight atomic.Int32
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not a Lambda DynamoDB event: "+err.Error(), 400)
		return
	}
	s.mu.Lock()
	delay, fail, answer := s.delay, s.fail, s.answer
	call := make([]received, 0, len(ev.Records))
	for _, rec := range ev.Records {
		call = append(call, received{Seq: rec.Change.SequenceNumber, EventID: rec.EventID, Key: keyOf(rec), Batch: len(s.tried) + 1})
	}
	s.tried = append(s.tried, call)
	s.maxEvent = max(s.maxEvent, len(body))
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay) // a slow handler, inside the request: not a test wait
	}
	if fail != nil && fail(ev) {
		http.Error(w, "failing on command", 500)
		return
	}
	if answer != nil {
		if status, body := answer(ev); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for _, rec := range ev.Records {
		s.recs = append(s.recs, received{Seq: rec.Change.SequenceNumber, EventID: rec.EventID, Key: keyOf(rec), Batch: s.calls,
			From: r.Header.Get("X-Poller"), At: at})
	}
}

// settle waits until no request is being handled, so that a snapshot holds every record that a
// stopped poller's last request will add.
func (s *sink) settle(t *testing.T) {
	t.Helper()
	waitFor(t, "the sink to finish the requests in flight", 30*time.Second, func() bool { return s.inflight.Load() == 0 })
}

func keyOf(r events.DynamoDBEventRecord) string {
	for _, v := range r.Change.Keys {
		return v.String()
	}
	return ""
}

func (s *sink) snapshot() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.recs...)
}

// triedCalls returns the records of every call so far, failed or not.
func (s *sink) triedCalls() [][]received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]received(nil), s.tried...)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is a running poller process.
type proc struct {
	cmd    *exec.Cmd
	log    *bytes
	done   chan struct{}
	status int
}

type bytes struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *bytes) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *bytes) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startPoller runs `poller run` with the config text (written to a file).
func startPoller(t *testing.T, config string) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poller.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(pollerBin, "run", "--config", path), log: &bytes{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start poller: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.status = p.cmd.ProcessState.ExitCode()
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("poller log:\n%s", tail(p.log.String(), 60))
		}
	})
	return p
}

// stop sends sig and waits for the exit status.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal poller: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("poller did not exit within 60s of %s", sig)
	}
	return p.status
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pipelineConfig is a one-pipeline config reading table (or stream ARN) at endpoint into the sink.
type pipelineConfig struct {
	Endpoint      string
	Table         string
	StreamARN     string
	SinkURL       string
	BatchSize     int
	LeaseDuration string
	RenewInterval string
	Extra         string // more pipeline keys, indented by 4 spaces
	Port          int    // of /metrics; 0 picks a free one
	LeaseTable    string // default poller-leases
	WorkerID      string // default: poller's (hostname and a random suffix)
	SinkExtra     string // more sink keys, indented by 6 spaces
}

func (c pipelineConfig) yaml(t *testing.T) string {
	source := "table: " + c.Table
	if c.StreamARN != "" {
		source = "stream_arn: " + c.StreamARN
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.LeaseDuration == "" {
		c.LeaseDuration, c.RenewInterval = "3s", "500ms"
	}
	if c.Port == 0 {
		c.Port = freePort(t)
	}
	if c.LeaseTable == "" {
		c.LeaseTable = "poller-leases"
	}
	worker := ""
	if c.WorkerID != "" {
		worker = "\n  worker_id: " + c.WorkerID
	}
	return fmt.Sprintf(`aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: %s%s
  lease_duration: %s
  renew_interval: %s
server:
  listen: 127.0.0.1:%d
log:
  level: debug
pipelines:
  - name: e2e
    source:
      %s
    batch_size: %d
%s    sink:
      type: http
      url: %s
%s`, c.Endpoint, c.LeaseTable, worker, c.LeaseDuration, c.RenewInterval, c.Port, source, c.BatchSize, c.Extra, c.SinkURL, c.SinkExtra)
}

// dynamo, createTable and writeItems are the shared test helpers (internal/testenv).
func dynamo(endpoint string) *dynamodb.Client { return testenv.DynamoDB(endpoint) }

func createTable(t testing.TB, db *dynamodb.Client, name string) {
	testenv.CreateStreamTable(t, db, name)
}

func writeItems(t testing.TB, db *dynamodb.Client, table string, from, n, pad int) {
	testenv.WriteItems(t, db, table, from, n, pad)
}

// checkOrder fails unless the records' sequence numbers strictly increase as big integers.
func checkOrder(t *testing.T, recs []received) {
	t.Helper()
	var prev *big.Int
	for i, r := range recs {
		n, ok := new(big.Int).SetString(r.Seq, 10)
		if !ok {
			t.Fatalf("record %d: sequence number %q is not a decimal", i, r.Seq)
		}
		if prev != nil && n.Cmp(prev) <= 0 {
			t.Fatalf("record %d (%s) arrived after %s: out of sequence-number order", i, r.Seq, prev)
		}
		prev = n
	}
}

// waitServing waits until the poller listening on port answers /healthz.
func waitServing(t *testing.T, port int) {
	t.Helper()
	waitFor(t, "poller to serve /healthz", time.Minute, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// metricValue scrapes the /metrics of the poller listening on port and returns the series name of
// pipeline whose labels contain labels (e.g. `result="throttled"`); 0 when absent or when the scrape
// fails (logged).
func metricValue(t *testing.T, port int, pipeline, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Logf("scrape metrics: %v", err)
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Logf("scrape metrics: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `pipeline="`+pipeline+`"`) || !strings.Contains(line, labels) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// byKey counts deliveries per key.
func byKey(recs []received) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.Key]++
	}
	return m
}
