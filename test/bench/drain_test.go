package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
	"github.com/poller-dev/poller/pkg/sinks"
)

// drain is one drain of the backlog, measured in its steady part: from the first records out (the
// bare loop's first page, poller's first lines on stdout) to the last, counting the records after
// the first ones.
type drain struct {
	records int           // records after the first output
	took    time.Duration // from the first output to the last
	cpu     time.Duration // CPU the reading process used meanwhile
	total   time.Duration // CPU the reading process used for the whole drain, start-up included
	wall    time.Duration // the whole drain, start-up included
}

func (d drain) rate() float64 { return float64(d.records) / d.took.Seconds() }

func (d drain) cpuPerRecord() time.Duration { return d.cpu / time.Duration(max(d.records, 1)) }

// BenchmarkDrainStdout drains the 20,000-record backlog with a bare GetRecords loop (Limit 1000) and,
// right after each bare drain, with the poller binary and its stdout sink (batch_size 1000, then
// 100), and reports for each the steady rate and the CPU per record of the reading process, and
// poller's ratios to the bare drain just before it (adjacent runs see the same machine load).
func BenchmarkDrainStdout(b *testing.B) {
	for range b.N {
		endpoint, table := setup(b, backlog)
		bareDrain(b, endpoint, table, backlog) // warms DynamoDB Local's JVM, so both are measured warm
		for _, bs := range []int{1000, 100} {
			bare := bareRead(b, endpoint, table, backlog)
			p := stdoutDrain(b, endpoint, table, bs)
			name := fmt.Sprintf("batch%d", bs)
			b.ReportMetric(bare.rate(), name+"_bare_records/s")
			b.ReportMetric(p.rate(), name+"_poller_records/s")
			b.ReportMetric(p.rate()/bare.rate(), name+"_rate_x_bare")
			b.ReportMetric(float64(bare.cpuPerRecord().Nanoseconds())/1000, name+"_bare_cpu_us/record")
			b.ReportMetric(float64(p.cpuPerRecord().Nanoseconds())/1000, name+"_poller_cpu_us/record")
			b.ReportMetric(float64(p.cpuPerRecord())/float64(bare.cpuPerRecord()), name+"_cpu_x_bare")
			b.ReportMetric(bare.total.Seconds(), name+"_bare_cpu_total_s")
			b.ReportMetric(p.total.Seconds(), name+"_poller_cpu_total_s")
		}
	}
}

// bareRead reads the whole stream with a plain GetRecords loop (Limit 1000), and measures it with
// this process's CPU, which does nothing else meanwhile.
func bareRead(b *testing.B, endpoint, table string, want int) drain {
	ctx := context.Background()
	pid := os.Getpid()
	start, cpu0 := time.Now(), cpuTime(b, pid)
	desc, err := client(endpoint).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		b.Fatal(err)
	}
	st := dynamodbstreams.NewFromConfig(testenv.AWSConfig(), func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ds, err := st.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: desc.Table.LatestStreamArn})
	if err != nil {
		b.Fatal(err)
	}
	var d drain
	var first time.Time
	var firstCPU time.Duration
	read := 0
	for _, sh := range ds.StreamDescription.Shards {
		it, err := st.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: desc.Table.LatestStreamArn, ShardId: sh.ShardId, ShardIteratorType: "TRIM_HORIZON"})
		if err != nil {
			b.Fatal(err)
		}
		for iter := it.ShardIterator; iter != nil && read < want; {
			out, err := st.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			if err != nil {
				b.Fatal(err)
			}
			read += len(out.Records)
			if first.IsZero() && read > 0 {
				first, firstCPU, d.records = time.Now(), cpuTime(b, pid), -read
			}
			iter = out.NextShardIterator
		}
	}
	if read < want {
		b.Fatalf("bare loop read %d records, want %d", read, want)
	}
	d.took, d.wall = time.Since(first), time.Since(start)
	end := cpuTime(b, pid)
	d.records += read
	d.cpu, d.total = end-firstCPU, end-cpu0
	return d
}

// stdoutDrain runs the poller binary with the stdout sink at batchSize until all of the backlog is
// out, and measures it from its standard output, which this process reads.
func stdoutDrain(b *testing.B, endpoint, table string, batchSize int) drain {
	b.Helper()
	cmd, out := startStdoutPoller(b, endpoint, table, batchSize)
	pid := cmd.Process.Pid
	var d drain
	var first time.Time
	var firstCPU time.Duration
	buf := make([]byte, 1<<20)
	lines := 0
	for lines < backlog {
		n, err := out.Read(buf)
		if n > 0 && first.IsZero() {
			first, firstCPU = time.Now(), cpuTime(b, pid)
			d.records = -bytes.Count(buf[:n], []byte{'\n'})
		}
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err != nil {
			b.Fatalf("poller's stdout after %d lines: %v", lines, err)
		}
	}
	d.took = time.Since(first)
	end := cpuTime(b, pid)
	d.records += lines
	d.cpu, d.total = end-firstCPU, end
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	_ = cmd.Wait()
	if lines != backlog {
		b.Fatalf("poller wrote %d lines, want %d", lines, backlog)
	}
	return d
}

// startStdoutPoller starts the binary with the stdout sink on table and returns its standard output.
func startStdoutPoller(b *testing.B, endpoint, table string, batchSize int) (*exec.Cmd, io.Reader) {
	b.Helper()
	cfg := fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: poller-leases-%d}
log: {level: warn}
pipelines:
  - name: bench
    source: {table: %s}
    batch_size: %d
    sink: {type: stdout}
`, endpoint, time.Now().UnixNano(), table, batchSize)
	cmd := testenv.PollerCommand(b, pollerBin, cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, out
}

// cpuTime returns the CPU time (user and system) process pid has used so far: the sum of its
// threads' run time from /proc/PID/task/*/schedstat, in nanoseconds (the tick-based counters of
// /proc/PID/stat are too coarse for a drain of a few tenths of a second). Go does not end its
// threads, so none is lost between two readings.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("read CPU time of process %d: no /proc/%d/task/*/schedstat", pid, pid)
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			b.Fatalf("parse %s: %v", t, err)
		}
		sum += time.Duration(ns)
	}
	return sum
}

// profiledStdout counts the lines the in-process stdout sink writes.
type profiledStdout struct {
	mu    sync.Mutex
	lines int
	done  chan struct{} // closed once the backlog is out
}

func (w *profiledStdout) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	before := w.lines
	w.lines += bytes.Count(p, []byte{'\n'})
	if before < backlog && w.lines >= backlog {
		close(w.done)
	}
	return len(p), nil
}

var profiled = &profiledStdout{}

func init() {
	// The stdout sink itself, writing to profiled instead of the process's standard output.
	sinks.Register("bench-stdout", nil, func(_ *sinks.StdoutConfig, _ sinks.Deps) (sinks.Sink, error) {
		return sinks.NewStdout(sinks.Deps{Stdout: profiled}), nil
	})
}

// BenchmarkDrainInProcess drains the backlog b.N times (a fresh lease table each time) with poller's
// service running inside the benchmark (the stdout sink, counting the lines instead of writing
// them), so that a CPU profile of the benchmark is poller's per-record path:
//
//	go test -run '^$' -bench DrainInProcess -benchtime 10x -cpuprofile cpu.out ./test/bench
//	go tool pprof -tagfocus phase=poller -top cpu.out
//
// POLLER_BENCH_BATCH_SIZE sets batch_size (default 1000).
func BenchmarkDrainInProcess(b *testing.B) {
	bs := 1000
	if v := os.Getenv("POLLER_BENCH_BATCH_SIZE"); v != "" {
		var err error
		if bs, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint, table := setup(b, backlog)
	bareDrain(b, endpoint, table, backlog)
	b.ResetTimer()
	for range b.N {
		drainInProcess(b, endpoint, table, bs)
	}
	b.ReportMetric(float64(b.N*backlog)/b.Elapsed().Seconds(), "records/s_incl_startup")
}

// drainInProcess runs poller's service on table with a fresh lease table until the backlog is out.
func drainInProcess(b *testing.B, endpoint, table string, batchSize int) {
	profiled.mu.Lock()
	profiled.lines, profiled.done = 0, make(chan struct{})
	profiled.mu.Unlock()
	ran, stop := startInProcess(b, fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: poller-leases-%d}
pipelines:
  - name: bench
    source: {table: %s}
    batch_size: %d
    sink: {type: bench-stdout}
`, endpoint, time.Now().UnixNano(), table, batchSize))
	select {
	case <-profiled.done:
	case err := <-ran:
		b.Fatalf("poller stopped before the backlog was out: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatal("the backlog was not out within 5 minutes")
	}
	close(stop)
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
}

// startInProcess runs poller's service on the config yaml inside the benchmark, every goroutine of
// it labelled phase=poller (goroutines inherit it): pprof -tagfocus phase=poller leaves out the
// benchmark's own work and the test endpoint. Closing stop stops it; ran delivers Run's result.
func startInProcess(b *testing.B, yaml string) (ran <-chan error, stop chan<- struct{}) {
	cfg, err := config.Parse([]byte(yaml), "bench.yaml", service.Registries())
	if err != nil {
		b.Fatal(err)
	}
	stopc := make(chan struct{})
	ranc := make(chan error, 1)
	pprof.Do(context.Background(), pprof.Labels("phase", "poller"), func(ctx context.Context) {
		app, err := service.New(ctx, cfg, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		go func() { ranc <- app.Run(ctx, stopc) }()
	})
	return ranc, stopc
}
