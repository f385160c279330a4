package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

// BenchmarkPeakRSS runs the binary on one shard of 350 KB items behind a slow http sink (300 ms a
// call) with batch_size 100 and the default memory budgets, and reports the process's peak resident
// memory (VmHWM of /proc/PID/status) once every record arrived. The backlog (400 items, 140 MB) is
// far larger than the budget, so reading is held back for the whole run.
func BenchmarkPeakRSS(b *testing.B) {
	const n, pad = 400, 350_000
	endpoint := testenv.NewDynamoDBLocal(b)
	db := client(endpoint)
	testenv.CreateStreamTable(b, db, "Big")
	testenv.WriteItems(b, db, "Big", 0, n, pad)
	for _, lanes := range []int{1, 4} {
		b.Run(fmt.Sprintf("parallelization_factor=%d", lanes), func(b *testing.B) {
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				time.Sleep(300 * time.Millisecond) // the slow handler, inside the request
				got.Add(int64(bytes.Count(body, []byte(`"eventSource":"aws:dynamodb"`))))
			}))
			defer srv.Close()
			start := time.Now()
			cmd := startBigPoller(b, endpoint, "Big", srv.URL, lanes)
			deadline := time.Now().Add(10 * time.Minute)
			for got.Load() < n {
				if time.Now().After(deadline) {
					b.Fatalf("sink got %d of %d records", got.Load(), n)
				}
				time.Sleep(100 * time.Millisecond)
			}
			took := time.Since(start)
			hwm, err := peakRSS(cmd.Process.Pid)
			if err != nil {
				b.Fatal(err)
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			b.ReportMetric(float64(hwm)/(1<<20), "peak_rss_MiB")
			b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		})
	}
}

// startBigPoller runs the binary on table with batch_size 100, lanes and the default memory
// budgets (no memory keys, so the same config runs on any version).
func startBigPoller(b *testing.B, endpoint, table, sinkURL string, lanes int) *exec.Cmd {
	b.Helper()
	cmd := startBenchPoller(b, endpoint, table, fmt.Sprintf(`batch_size: 100
    parallelization_factor: %d
    sink: {type: http, url: %s, timeout: 60s}`, lanes, sinkURL))
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// peakRSS reads the peak resident set size (VmHWM) of process pid, in bytes.
func peakRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
