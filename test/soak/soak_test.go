// Package soak kills a poller process with kill -9 at random moments while records flow through
// four shards of the Streams test endpoint, then checks that nothing was lost, that each partition
// key's records arrived in order (a redelivery restarts from the checkpoint), and that duplicates
// stayed within the documented bound. scripts/soak.sh runs the long version (50 kills, 100,000
// records); `go test` runs a short one (5 kills, 10,000 records) with a fixed seed.
package soak

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// The soak's knobs, from the environment (scripts/soak.sh sets them).
const (
	envKills   = "SOAK_KILLS"   // kill -9s per run; default 5
	envRecords = "SOAK_RECORDS" // records per run; default 10000
	envSeed    = "SOAK_SEED"    // seed of the kill moments; default 1
	envReport  = "SOAK_REPORT"  // file the figures are appended to; default none
)

const (
	shards        = 4
	keysPerShard  = 16
	batchSize     = 100
	leaseDuration = 2 * time.Second
	renewInterval = 250 * time.Millisecond
	// writeRate is records per second across the shards: slow enough that records still flow
	// during every kill of a run (each kill costs about lease_duration plus a start), fast enough to
	// keep batches in flight.
	writeRate = 500
)

var pollerBin string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithPoller(m, &pollerBin, "-race")) }

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

// TestKill9Soak runs the soak once per parallelization_factor.
func TestKill9Soak(t *testing.T) {
	kills, records := envInt(t, envKills, 5), envInt(t, envRecords, 10_000)
	seed := uint64(envInt(t, envSeed, 1))
	for _, factor := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallelization_factor %d", factor), func(t *testing.T) {
			r := run(t, factor, kills, records, seed)
			r.check(t)
			line := r.String()
			t.Log(line)
			if path := os.Getenv(envReport); path != "" {
				f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					t.Fatalf("open report: %v", err)
				}
				defer f.Close()
				if _, err := fmt.Fprintln(f, line); err != nil {
					t.Fatalf("write report: %v", err)
				}
			}
		})
	}
}

// delivery is one record as the sink received it.
type delivery struct {
	key  string // partition key: s<shard>-k<key>
	n    int    // the record's place among its key's records, from 0
	proc int    // which poller process sent it (0 before the first kill)
}

// sink records every record of every call in arrival order. Calls are answered at once, after a
// short delay that keeps batches in flight.
type sink struct {
	mu   sync.Mutex
	recs []delivery
	err  error // the first malformed call
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The sender died (kill -9) or gave up (its fence) in the middle of the request: not
		// delivered, and not the sink's business.
		http.Error(w, err.Error(), 400)
		return
	}
	var ev events.DynamoDBEvent
	err = json.Unmarshal(body, &ev)
	proc, perr := strconv.Atoi(r.Header.Get("X-Process"))
	time.Sleep(2 * time.Millisecond) // a handler's work, inside the request: not a test wait
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && perr != nil {
		err = perr
	}
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		http.Error(w, err.Error(), 400)
		return
	}
	for _, rec := range ev.Records {
		n, err := strconv.Atoi(rec.Change.NewImage["n"].Number())
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("record %s: n: %w", rec.Change.SequenceNumber, err)
		}
		s.recs = append(s.recs, delivery{key: rec.Change.Keys["pk"].String(), n: n, proc: proc})
	}
}

func (s *sink) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.recs...)
}

// distinct counts the distinct records among recs.
func distinct(recs []delivery) int {
	seen := map[delivery]bool{}
	for _, r := range recs {
		seen[delivery{key: r.key, n: r.n}] = true
	}
	return len(seen)
}

// env is one run's stream, sink and config.
type env struct {
	srv    *streamstest.Server
	st     *streamstest.Stream
	ids    []string
	sink   *sink
	sinkAt string
	table  string
	factor int
}

// writer puts records into the shards at writeRate until total were written, then closes done.
func (e *env) writer(total int, done chan<- struct{}, quit <-chan struct{}) {
	defer close(done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(1, writeRate/100)
	next := make([]int, shards) // records written per shard
	for written := 0; written < total; {
		for range min(perTick, total-written) {
			s := written % shards
			i := next[s]
			key := fmt.Sprintf("s%d-k%02d", s, i%keysPerShard)
			e.st.Put(e.ids[s], streamstest.Insert(streamstest.Item{"pk": streamstest.S(key)},
				streamstest.Item{"pk": streamstest.S(key), "n": streamstest.N(i / keysPerShard)}))
			next[s]++
			written++
		}
		select {
		case <-tick.C:
		case <-quit:
			return
		}
	}
}

// proc is one poller process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func (e *env) start(t *testing.T, i int) *proc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: %s
  worker_id: soak-%d
  lease_duration: %s
  renew_interval: %s
server:
  listen: 127.0.0.1:%d
log:
  level: warn
pipelines:
  - name: soak
    source:
      stream_arn: %s
    batch_size: %d
    parallelization_factor: %d
    sink:
      type: http
      url: %s
      headers:
        X-Process: "%d"
`, e.srv.URL, e.table, i, leaseDuration, renewInterval, freePort(t), e.st.ARN(), batchSize, e.factor, e.sinkAt, i)
	path := filepath.Join(dir, "poller.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "poller.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(pollerBin, "run", "--config", path), done: make(chan struct{}), log: log}
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start poller: %v", err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is judged by the caller through stop
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("poller %d log (tail):\n%s", i, tail(string(b), 30))
		}
		log.Close()
	})
	return p
}

// stop sends sig and waits until the process is gone.
func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("poller did not exit within a minute of %s", sig)
	}
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

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitFor polls cond every 20 ms until it holds; false after timeout.
func waitFor(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(timeout); !cond(); <-tick.C {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// run is one soak run: kills processes 0..kills-1 with kill -9 at random moments while total
// records are written, then lets process kills deliver the rest and stops it with SIGTERM.
func run(t *testing.T, factor, kills, total int, seed uint64) *result {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	e := &env{srv: srv, st: srv.CreateStream("Soak", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk")),
		sink: &sink{}, table: fmt.Sprintf("soak-leases-%d-%d", factor, time.Now().UnixNano()), factor: factor}
	e.ids = e.st.OpenShards(shards)
	hs := httptest.NewServer(e.sink)
	t.Cleanup(hs.Close)
	e.sinkAt = hs.URL

	began := time.Now()
	written, quit := make(chan struct{}), make(chan struct{})
	go e.writer(total, written, quit)
	t.Cleanup(func() { close(quit); <-written })
	rng := rand.New(rand.NewPCG(seed, uint64(factor)))
	r := &result{factor: factor, records: total, seed: seed}
	for i := range kills {
		p := e.start(t, i)
		// A kill is meant for a process that delivers: wait for its first call (after it took the
		// leases, lease_duration after the previous kill), unless every record is delivered already.
		if !waitFor(time.Minute, func() bool { return e.delivered(i) || e.caughtUp(written, total) }) {
			t.Fatalf("process %d delivered nothing within a minute", i)
		}
		// Then kill it at a random moment within its next 1.5 s.
		at := time.NewTimer(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		<-at.C
		p.stop(t, syscall.SIGKILL)
		r.kills++
	}
	last := e.start(t, kills)
	if !waitFor(10*time.Minute, func() bool { return e.caughtUp(written, total) }) {
		t.Fatalf("after the last kill, %d of %d records arrived within 10 minutes", distinct(e.sink.snapshot()), total)
	}
	last.stop(t, syscall.SIGTERM) // a redelivery, if any, happens before the exit
	if code := last.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the last process exited with %d after SIGTERM, want 0", code)
	}
	r.took = time.Since(began)
	e.sink.mu.Lock()
	if e.sink.err != nil {
		t.Errorf("the sink got a malformed call: %v", e.sink.err)
	}
	e.sink.mu.Unlock()
	r.recs = e.sink.snapshot()
	return r
}

// delivered reports whether process i made a sink call.
func (e *env) delivered(i int) bool {
	e.sink.mu.Lock()
	defer e.sink.mu.Unlock()
	for j := len(e.sink.recs) - 1; j >= 0 && j >= len(e.sink.recs)-1000; j-- {
		if e.sink.recs[j].proc == i {
			return true
		}
	}
	return false
}

// caughtUp reports whether every record was written and delivered.
func (e *env) caughtUp(written <-chan struct{}, total int) bool {
	select {
	case <-written:
		return distinct(e.sink.snapshot()) >= total
	default:
		return false
	}
}

// result is one run's figures.
type result struct {
	factor, kills, records int
	seed                   uint64
	took                   time.Duration
	recs                   []delivery

	lost, duplicates, orderViolations int
	// maxPerKill is the most duplicates one process delivered (records its predecessors had
	// delivered); maxPerShardKill, the most for one shard.
	maxPerKill, maxPerShardKill int
}

// bound is the documented bound on duplicates per shard per kill: two batches per lane, the one
// whose checkpoint was being written and the next, which overlaps that write.
func (r *result) bound() int { return 2 * batchSize * r.factor }

// analyze computes the figures. A record is lost when it never arrived. A key's order is violated
// when one of its records arrives after an earlier-arrived record of the key that it does not
// directly follow (n = the previous n + 1), unless it goes back (n <= the previous): a redelivery
// restarts from the checkpoint and repeats a suffix already delivered. A duplicate is a record
// arriving again; it is charged to the process that sent it (the one started after a kill).
func (r *result) analyze() {
	type rec struct {
		key string
		n   int
	}
	seen := map[rec]bool{}
	prev := map[string]int{}
	perProc := map[int]int{}
	perProcShard := map[[2]int]int{}
	for _, d := range r.recs {
		k := rec{d.key, d.n}
		p, ok := prev[d.key]
		if !ok {
			p = -1
		}
		if d.n > p+1 {
			r.orderViolations++
		}
		prev[d.key] = d.n
		if seen[k] {
			r.duplicates++
			perProc[d.proc]++
			shard, _ := strconv.Atoi(d.key[1:strings.IndexByte(d.key, '-')])
			perProcShard[[2]int{d.proc, shard}]++
		}
		seen[k] = true
	}
	r.lost = r.records - len(seen)
	for _, n := range perProc {
		r.maxPerKill = max(r.maxPerKill, n)
	}
	for _, n := range perProcShard {
		r.maxPerShardKill = max(r.maxPerShardKill, n)
	}
}

func (r *result) check(t *testing.T) {
	t.Helper()
	r.analyze()
	if r.lost != 0 {
		t.Errorf("%d of %d records never arrived", r.lost, r.records)
	}
	if r.orderViolations != 0 {
		t.Errorf("%d records arrived out of their partition key's order", r.orderViolations)
	}
	if r.maxPerShardKill > r.bound() {
		t.Errorf("a process repeated %d records of one shard after a kill, over the bound of 2 x batch_size x parallelization_factor = %d",
			r.maxPerShardKill, r.bound())
	}
	if r.duplicates > r.kills*shards*r.bound() {
		t.Errorf("%d duplicates after %d kills, over %d kills x %d shards x %d", r.duplicates, r.kills, r.kills, shards, r.bound())
	}
}

func (r *result) String() string {
	return fmt.Sprintf("parallelization_factor=%d kills=%d records=%d lost=%d duplicates=%d max_duplicates_per_kill=%d "+
		"max_duplicates_per_shard_per_kill=%d bound_per_shard_per_kill=%d order_violations=%d deliveries=%d seed=%d time=%s",
		r.factor, r.kills, r.records, r.lost, r.duplicates, r.maxPerKill, r.maxPerShardKill, r.bound(), r.orderViolations,
		len(r.recs), r.seed, r.took.Round(time.Second))
}
