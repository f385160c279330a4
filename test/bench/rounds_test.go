package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// BenchmarkLeaseRounds runs the binary on one process against the Streams test endpoint with N idle
// open shards (lease table in a fresh DynamoDB Local, default leases: 10 s / 2 s), waits until it
// holds every lease, then watches its renewal rounds for a while (the "renewed leases" debug log of
// each round) and stops it with SIGTERM. It reports the rounds' renewal time (p50, max), the
// renewals that failed or were put off to the next round, the leases lost, and the time from SIGTERM
// to exit (and fails on an exit status other than 0).
//
// BENCH_ROUNDS_SHARDS (default "1000,2000,4000") and BENCH_ROUNDS_SECONDS (default 60) set the sizes
// and the time watched; BENCH_ROUNDS_LOG names a file to keep the poller's log in.
//
//	go test -run '^$' -bench LeaseRounds -benchtime 1x -timeout 60m ./test/bench
func BenchmarkLeaseRounds(b *testing.B) {
	sizes := []int{1000, 2000, 4000}
	if v := os.Getenv("BENCH_ROUNDS_SHARDS"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("BENCH_ROUNDS_SHARDS: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	watch := 60 * time.Second
	if v := os.Getenv("BENCH_ROUNDS_SECONDS"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("BENCH_ROUNDS_SECONDS: %v", err)
		}
		watch = time.Duration(s) * time.Second
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			for range b.N {
				leaseRounds(b, n, watch)
			}
		})
	}
}

func leaseRounds(b *testing.B, n int, watch time.Duration) {
	srv := streamstest.New(b, streamstest.Options{Upstream: testenv.NewDynamoDBLocal(b)})
	st := srv.CreateStream("Idle", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	st.OpenShards(n)
	cmd, rounds := startRoundsPoller(b, srv.URL, st.ARN())
	defer func() { _ = cmd.Process.Kill() }()

	start := time.Now()
	if !rounds.waitHeld(n, 5*time.Minute) {
		b.Fatalf("the poller holds %d of %d leases after 5 min", rounds.lastHeld(), n)
	}
	b.Logf("%d shards: every lease held %.1f s after start", n, time.Since(start).Seconds())
	rounds.reset()
	time.Sleep(watch)
	got := rounds.reset()

	stopAt := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	exit := time.Since(stopAt)
	if err != nil {
		b.Errorf("exit after SIGTERM: %v, want status 0; its last warnings:\n%s", err, strings.Join(rounds.lastWarnings(), "\n"))
	}
	took := got.took
	slices.Sort(took)
	if len(took) == 0 {
		b.Fatalf("no renewal round logged in %s", watch)
	}
	b.ReportMetric(float64(len(took)), "rounds")
	b.ReportMetric(took[len(took)/2], "renew_p50_s")
	b.ReportMetric(took[len(took)-1], "renew_max_s")
	b.ReportMetric(float64(got.failed), "renewals_failed")
	b.ReportMetric(float64(got.delayed), "renewals_delayed")
	b.ReportMetric(float64(got.lost), "leases_lost")
	b.ReportMetric(float64(got.minHeld), "min_held")
	b.ReportMetric(exit.Seconds(), "sigterm_exit_s")
}

// startRoundsPoller starts the binary at debug level on one pipeline reading streamARN through the
// endpoint, and follows its renewal rounds in its log.
func startRoundsPoller(b *testing.B, endpoint, streamARN string) (*exec.Cmd, *roundLog) {
	b.Helper()
	port := freePort(b)
	cfg := fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: poller-leases-%d}
server: {listen: "127.0.0.1:%d"}
log: {level: debug}
pipelines:
  - name: idle
    source: {stream_arn: "%s"}
    sink: {type: stdout}
`, endpoint, time.Now().UnixNano(), port, streamARN)
	cmd := testenv.PollerCommand(b, pollerBin, cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, nil // the log is read through the pipe
	logs, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	rl := &roundLog{changed: make(chan struct{}, 1)}
	rl.clear()
	var r io.Reader = logs
	if path := os.Getenv("BENCH_ROUNDS_LOG"); path != "" { // keep the poller's log
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		r = io.TeeReader(logs, f)
	}
	go rl.follow(r)
	return cmd, rl
}

// roundStats is what the poller's "renewed leases" log lines said.
type roundStats struct {
	took                  []float64 // seconds
	failed, delayed, lost int
	held, minHeld         int
}

// roundLog follows the "renewed leases" log lines since the last reset.
type roundLog struct {
	mu       sync.Mutex
	stats    roundStats
	warnings []string // the last 20 warnings and errors
	changed  chan struct{}
}

func (r *roundLog) lastWarnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.warnings)
}

func (r *roundLog) clear() { r.stats = roundStats{held: r.stats.held, minHeld: -1} }

func (r *roundLog) follow(logs io.Reader) {
	sc := bufio.NewScanner(logs)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg, Level                  string
			Took                        float64
			Held, Failed, Delayed, Lost int
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Level != "debug" && line.Level != "info" {
			r.mu.Lock()
			r.warnings = append(r.warnings[max(0, len(r.warnings)-19):], sc.Text())
			r.mu.Unlock()
		}
		if line.Msg != "renewed leases" {
			continue
		}
		r.mu.Lock()
		st := &r.stats
		st.took = append(st.took, line.Took)
		st.failed += line.Failed
		st.delayed += line.Delayed
		st.lost += line.Lost
		st.held = line.Held
		if st.minHeld < 0 || line.Held < st.minHeld {
			st.minHeld = line.Held
		}
		r.mu.Unlock()
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

// reset returns what was logged since the last reset, and starts again.
func (r *roundLog) reset() roundStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.stats
	r.clear()
	return got
}

func (r *roundLog) lastHeld() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats.held
}

// waitHeld waits until a round renewed with n leases held, or timeout passed.
func (r *roundLog) waitHeld(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for r.lastHeld() < n {
		select {
		case <-r.changed:
		case <-deadline.C:
			return false
		}
	}
	return true
}
