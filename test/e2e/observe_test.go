package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/service"
)

// TestObserveThrottlesInFlightOnFailureAndStatus: what an operator sees of a running poller, through
// its /metrics and /status: sink calls refused with 429 count as throttles, a call the sink holds is
// in flight, a record discarded after max_retry_attempts and stored by on_failure is counted, and
// /status shows the shard with its checkpoint and age and the last sink error (Lambda's
// LastProcessingResult).
func TestObserveThrottlesInFlightOnFailureAndStatus(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table := fmt.Sprintf("Observe%d", time.Now().UnixNano())
	createTable(t, db, table)
	s := newSink(t)
	const poison = 3
	release := make(chan struct{})
	t.Cleanup(func() { closeOnce(release) })
	calls := throttleThenHold(s, itemKey(poison), release)
	port := freePort(t)
	reports := filepath.Join(t.TempDir(), "on_failure.jsonl")
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: table, SinkURL: s.srv.URL, Port: port,
		LeaseTable: fmt.Sprintf("observe-leases-%d", time.Now().UnixNano()),
		Extra:      "    max_retry_attempts: 0\n    on_failure:\n      type: file\n      path: " + reports + "\n"}.yaml(t))
	metric := func(name, labels string) float64 { return metricValue(t, port, "e2e", name, labels) }
	waitServing(t, port)
	writeItems(t, db, table, 0, poison, 10)

	waitFor(t, "two throttled calls, then one held", time.Minute, func() bool { return calls.Load() >= 3 })
	waitFor(t, "poller_sink_in_flight 1 while the sink holds a call", 30*time.Second, func() bool {
		return metric("poller_sink_in_flight", "") == 1
	})
	if got := metric("poller_sink_throttles_total", ""); got != 2 {
		t.Errorf("poller_sink_throttles_total = %v after two 429 answers, want 2", got)
	}
	st := pipelineStatus(t, port)
	if !strings.Contains(st.LastProcessingResult, "PROBLEM: ") || !strings.Contains(st.LastProcessingResult, "status 429") ||
		st.LastError == nil || !strings.Contains(st.LastError.Error, "status 429") || len(st.Shards) != 1 {
		t.Errorf("/status while the sink throttles = %+v, want the 429 as the last result and error, and the shard read", st)
	}

	closeOnce(release)
	waitFor(t, "the held batch to be delivered", time.Minute, func() bool { return s.count() == poison })
	waitFor(t, "poller_sink_in_flight back to 0", 30*time.Second, func() bool { return metric("poller_sink_in_flight", "") == 0 })
	if got := metric("poller_records_on_failure_total", ""); got != 0 {
		t.Errorf("poller_records_on_failure_total = %v before any record failed, want 0", got)
	}

	writeItems(t, db, table, poison, 1, 10)
	waitFor(t, "the poison record stored by on_failure", time.Minute, func() bool {
		return metric("poller_records_on_failure_total", "") == 1
	})
	if got := metric("poller_records_dropped_total", `reason="retries_exhausted"`); got != 1 {
		t.Errorf(`poller_records_dropped_total{reason="retries_exhausted"} = %v, want 1`, got)
	}
	if got := metric("poller_sink_throttles_total", ""); got != 2 {
		t.Errorf("poller_sink_throttles_total = %v after a 500, want still 2 (a function error is no throttle)", got)
	}
	last := lastSequenceNumber(t, endpoint, table)
	waitFor(t, "/status to show the checkpoint past the poison record", 30*time.Second, func() bool {
		st := pipelineStatus(t, port)
		return len(st.Shards) == 1 && st.Shards[0].Checkpoint == last
	})
	st = pipelineStatus(t, port)
	if sh := st.Shards[0]; sh.IteratorAgeSeconds == nil || st.Paused || st.Leases != 1 {
		t.Errorf("/status shard = %+v, paused %v, leases %d; want an iterator age, not paused, 1 lease", sh, st.Paused, st.Leases)
	}
	if !strings.Contains(st.LastProcessingResult, "status 500") || st.LastError == nil || !strings.Contains(st.LastError.Error, "status 500") {
		t.Errorf("/status after the poison record: result %q, last error %+v; want the 500", st.LastProcessingResult, st.LastError)
	}
	if want := `poller_build_info{goversion="go`; !strings.Contains(scrape(t, port), want) {
		t.Errorf("/metrics has no %s", want)
	}
	if want := `version="` + e2eVersion + `"} 1`; !strings.Contains(scrape(t, port), want) {
		t.Errorf("/metrics has no poller_build_info with %s (the version stamped into the binary)", want)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
}

// TestHealthcheckExitsZeroWhenHealthyAndOneWhenWedgedOrAbsent: `poller healthcheck` against a real
// poller exits 0 while it runs; once its lease table goes away (the only way to DynamoDB Local is
// cut) no lease round completes, and after 3 x lease_duration /healthz fails and healthcheck exits
// 1 naming the wedged pipeline; with the process gone it exits 1 as well.
func TestHealthcheckExitsZeroWhenHealthyAndOneWhenWedgedOrAbsent(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table := fmt.Sprintf("Health%d", time.Now().UnixNano())
	createTable(t, db, table)
	proxy := newCutProxy(t, strings.TrimPrefix(endpoint, "http://"))
	s := newSink(t)
	port := freePort(t)
	cfg := pipelineConfig{Endpoint: proxy.url(), Table: table, SinkURL: s.srv.URL, Port: port,
		LeaseTable: fmt.Sprintf("health-leases-%d", time.Now().UnixNano())}.yaml(t)
	cfgPath := filepath.Join(t.TempDir(), "poller.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPoller(t, cfg)
	healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	waitFor(t, "the poller to be ready (a lease round done)", time.Minute, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if code, out := healthcheck(t, "--config", cfgPath); code != 0 {
		t.Fatalf("poller healthcheck --config against a healthy poller = exit %d (%s), want 0", code, out)
	}

	proxy.cutOff()
	var out string
	waitFor(t, "healthcheck to report the wedged pipeline", time.Minute, func() bool {
		var code int
		code, out = healthcheck(t, "--url", healthURL)
		return code == 1 && strings.Contains(out, "wedged")
	})
	if !strings.Contains(out, "pipeline e2e") {
		t.Errorf("healthcheck output %q does not name the wedged pipeline", out)
	}
	select {
	case <-p.done:
		t.Fatalf("the poller exited (%d) when its lease table went away; want it running, wedged", p.status)
	default:
	}

	_ = p.cmd.Process.Kill()
	<-p.done
	if code, out := healthcheck(t, "--url", healthURL); code != 1 {
		t.Errorf("poller healthcheck with no poller listening = exit %d (%s), want 1", code, out)
	}
}

// throttleThenHold makes s answer its first two calls with 429, hold the third until release is
// closed, accept the rest, and fail with 500 every call that carries the poison key. It returns the
// count of calls without the poison key.
func throttleThenHold(s *sink, poison string, release <-chan struct{}) *atomic.Int32 {
	calls := &atomic.Int32{}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = func(ev events.DynamoDBEvent) (int, string) {
		if holds(ev, poison) {
			return http.StatusInternalServerError, "poison"
		}
		switch calls.Add(1) {
		case 1, 2:
			return http.StatusTooManyRequests, "slow down"
		case 3:
			<-release // held: in flight until the test lets it through
		}
		return 0, ""
	}
	return calls
}

// healthcheck runs `poller healthcheck` with args and returns its exit code and output.
func healthcheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pollerBin, append([]string{"healthcheck"}, args...)...)
	cmd.Env = append(os.Environ(), "POLLER_CONFIG=")
	out, err := cmd.CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("run poller healthcheck: %v", err)
	}
	return 0, string(out)
}

// pipelineStatus reads the e2e pipeline's part of /status.
func pipelineStatus(t *testing.T, port int) service.PipelineStatus {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	var st service.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decode /status: %v", err)
	}
	for _, p := range st.Pipelines {
		if p.Name == "e2e" {
			if st.WorkerID == "" {
				t.Errorf("/status has no worker_id")
			}
			return p
		}
	}
	t.Fatalf("/status lists no pipeline e2e: %+v", st)
	return service.PipelineStatus{}
}

// scrape returns the /metrics text of the poller listening on port.
func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// cutProxy forwards TCP connections to a target until cutOff, which closes its listener and every
// connection: to its clients, the target is gone (connection refused).
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.cutOff(); p.wg.Wait() })
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track remembers the connections, or closes them if the proxy was cut meanwhile.
func (p *cutProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		if p.closed {
			c.Close()
			continue
		}
		p.conns[c] = true
	}
	return !p.closed
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (p *cutProxy) cutOff() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
}
