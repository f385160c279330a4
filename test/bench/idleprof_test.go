package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// BenchmarkIdleInProcess runs poller's service inside the benchmark on open, empty shards (the
// Streams test endpoint, the lease table in DynamoDB Local) for 30 s once every shard is read, so
// that a CPU or heap profile of the benchmark is what idle shards cost:
//
//	go test -run '^$' -bench IdleInProcess -benchtime 1x -cpuprofile cpu.out -memprofile mem.out ./test/bench
//	go tool pprof -tagfocus phase=poller -top cpu.out
//
// POLLER_BENCH_SHARDS sets the number of shards (default 1000), POLLER_BENCH_IDLE_POLL the
// pipeline's idle_poll_interval (default 0).
func BenchmarkIdleInProcess(b *testing.B) {
	n := idleShards
	if v := os.Getenv("POLLER_BENCH_SHARDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	idle := os.Getenv("POLLER_BENCH_IDLE_POLL")
	if idle == "" {
		idle = "0s"
	}
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	upstream := testenv.NewDynamoDBLocal(b)
	for range b.N {
		idleInProcess(b, upstream, n, idle)
	}
}

func idleInProcess(b *testing.B, upstream string, n int, idle string) {
	srv := streamstest.New(b, streamstest.Options{Upstream: upstream})
	st := srv.CreateStream("Idle", streamstest.KeysOnly, streamstest.WithKeySchema("pk"))
	st.OpenShards(n)
	ran, stop := startInProcess(b, fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: poller-leases-%d}
pipelines:
  - name: bench
    source: {table: Idle}
    idle_poll_interval: %s
    sink: {type: stdout}
`, srv.URL, time.Now().UnixNano(), idle))
	deadline := time.Now().Add(5 * time.Minute)
	for srv.Calls(streamstest.OpGetShardIterator) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d shards started within 5 minutes", srv.Calls(streamstest.OpGetShardIterator), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ResetTimer()
	calls := srv.Calls(streamstest.OpGetRecords)
	time.Sleep(15 * time.Second)
	if f := os.Getenv("POLLER_BENCH_HEAP"); f != "" {
		writeHeap(b, f)
	}
	time.Sleep(15 * time.Second)
	b.ReportMetric(float64(srv.Calls(streamstest.OpGetRecords)-calls)/30/float64(n), "getrecords/s/shard")
	b.StopTimer()
	close(stop)
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
}

// writeHeap writes a heap profile (after a GC) and the goroutine count to file, mid-window.
func writeHeap(b *testing.B, file string) {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
	if g, err := os.Create(file + ".goroutines"); err == nil {
		_ = pprof.Lookup("goroutine").WriteTo(g, 1)
		_ = g.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(start)
	b.Logf("goroutines %d, heap in use %d MiB, stacks %d MiB (a new goroutine's: %d KiB), sys %d MiB",
		runtime.NumGoroutine(), ms.HeapInuse>>20, ms.StackInuse>>20, start[0].Value.Uint64()>>10, ms.Sys>>20)
}
