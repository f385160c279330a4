package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// idleShards is how many open, empty shards BenchmarkIdleShards reads.
const idleShards = 1000

// BenchmarkIdleShards runs the binary on 1,000 open shards that never get a record (the Streams test
// endpoint, the lease table in DynamoDB Local), at the default 250 ms poll interval and with
// idle_poll_interval 1s. Once every shard is read it measures, over 30 s: the process's CPU (cores,
// and per GetRecords call), GetRecords calls per second and per shard, the connections the endpoint
// accepted per 1,000 calls (what an undersized connection pool costs: a TLS handshake each against
// AWS), and the resident memory at the end.
func BenchmarkIdleShards(b *testing.B) {
	upstream := testenv.NewDynamoDBLocal(b)
	for _, idle := range []string{"0s", "1s"} {
		b.Run("idle_poll_interval="+idle, func(b *testing.B) {
			for range b.N {
				idleRun(b, upstream, idle, 30*time.Second)
			}
		})
	}
}

func idleRun(b *testing.B, upstream, idle string, window time.Duration) {
	srv := streamstest.New(b, streamstest.Options{Upstream: upstream})
	st := srv.CreateStream("Idle", streamstest.KeysOnly, streamstest.WithKeySchema("pk"))
	st.OpenShards(idleShards)
	cmd := startBenchPoller(b, srv.URL, "Idle", fmt.Sprintf(`idle_poll_interval: %s
    sink: {type: stdout}`, idle))
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	// Every shard asks for an iterator once when its reader starts.
	deadline := time.Now().Add(5 * time.Minute)
	for srv.Calls(streamstest.OpGetShardIterator) < idleShards {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d shards started within 5 minutes", srv.Calls(streamstest.OpGetShardIterator), idleShards)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(10 * time.Second) // past the startup burst and the back-off to idle_poll_interval

	calls0, conns0, cpu0 := srv.Calls(streamstest.OpGetRecords), srv.Conns(), cpuTime(b, cmd.Process.Pid)
	start := time.Now()
	time.Sleep(window)
	calls, conns, cpu := srv.Calls(streamstest.OpGetRecords)-calls0, srv.Conns()-conns0, cpuTime(b, cmd.Process.Pid)-cpu0
	took := time.Since(start)

	b.ReportMetric(cpu.Seconds()/took.Seconds(), "cores")
	b.ReportMetric(float64(calls)/took.Seconds(), "getrecords/s")
	b.ReportMetric(float64(calls)/took.Seconds()/idleShards, "getrecords/s/shard")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(calls, 1)), "cpu_us/call")
	b.ReportMetric(1000*float64(conns)/float64(max(calls, 1)), "new_conns/1000calls")
	b.ReportMetric(float64(residentBytes(b, cmd.Process.Pid))/(1<<20), "rss_MiB")
}

// residentBytes is the process's resident memory now (VmRSS of /proc/PID/status).
func residentBytes(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if f := bytes.Fields(line); len(f) == 3 && string(f[0]) == "VmRSS:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// BenchmarkIdleLatency measures what idle_poll_interval costs in latency, on one shard of DynamoDB
// Local at the default 250 ms poll interval, without and with idle_poll_interval 1s: the
// write-to-sink latency of a steady stream of 20 records a second for 15 s (p50, p99), and of the
// first record written after 5 s of quiet, ten times (p50, max).
func BenchmarkIdleLatency(b *testing.B) {
	for _, idle := range []string{"0s", "1s"} {
		b.Run("idle_poll_interval="+idle, func(b *testing.B) {
			for range b.N {
				idleLatency(b, idle)
			}
		})
	}
}

func idleLatency(b *testing.B, idle string) {
	const steady, quiets = 300, 10
	endpoint, table := setup(b, 0)
	s := &sink{received: make(chan struct{}, 1)}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cmd := startBenchPoller(b, endpoint, table, fmt.Sprintf(`batch_size: 100
    idle_poll_interval: %s
    sink: {type: http, url: %s}`, idle, srv.URL))
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	db := client(endpoint)
	put := func(pk string, stamped bool) {
		item := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
		if stamped {
			item["sent_ns"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixNano(), 10)}
		}
		if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			b.Fatal(err)
		}
	}
	put("warm", false) // the first record proves poller is polling
	waitCount(b, s, 1, time.Minute)

	tick := time.NewTicker(50 * time.Millisecond)
	for i := range steady {
		<-tick.C
		put(fmt.Sprintf("s-%d", i), true)
	}
	tick.Stop()
	waitCount(b, s, 1+steady, time.Minute)
	for i := range quiets {
		time.Sleep(5 * time.Second) // long enough for the shard to back off to idle_poll_interval
		put(fmt.Sprintf("q-%d", i), true)
		waitCount(b, s, 1+steady+i+1, time.Minute)
	}

	s.mu.Lock()
	lat := slices.Clone(s.latency)
	s.mu.Unlock()
	stream, first := lat[:steady], lat[steady:]
	slices.Sort(stream)
	slices.Sort(first)
	pct := func(l []time.Duration, p float64) float64 { return l[int(p*float64(len(l)-1))].Seconds() * 1000 }
	b.ReportMetric(pct(stream, 0.5), "p50_ms")
	b.ReportMetric(pct(stream, 0.99), "p99_ms")
	b.ReportMetric(pct(first, 0.5), "first_after_quiet_p50_ms")
	b.ReportMetric(pct(first, 1), "first_after_quiet_max_ms")
}
