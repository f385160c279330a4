// Package bench measures poller against DynamoDB Local: how fast it drains a backlog beside a bare
// GetRecords loop on the same stream, and the latency from a write to its arrival at an http sink.
// It runs only with -bench (scripts/bench.sh), against a poller binary built without -race.
//
//	go test -run '^$' -bench . -benchtime 1x ./test/bench
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/poller-dev/poller/internal/testenv"
)

var pollerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // plain go test: nothing to build
	}
	os.Exit(testenv.MainWithPoller(m, &pollerBin))
}

const backlog = 20_000

// setup starts a fresh DynamoDB Local (its first table is fast: see dynamodb-local.md), creates a
// table with a stream and writes n items of about 100 bytes.
func setup(b *testing.B, n int) (endpoint, table string) {
	b.Helper()
	endpoint = testenv.NewDynamoDBLocal(b)
	db := client(endpoint)
	table = "Bench"
	testenv.CreateStreamTable(b, db, table)
	testenv.WriteItems(b, db, table, 0, n, 60)
	return endpoint, table
}

func client(endpoint string) *dynamodb.Client { return testenv.DynamoDB(endpoint) }

// bareDrain reads the whole stream with a plain GetRecords loop and returns records per second,
// from before its first call to its last page.
func bareDrain(b *testing.B, endpoint, table string, want int) float64 {
	d := bareRead(b, endpoint, table, want)
	return float64(want) / d.wall.Seconds()
}

// sink counts records and keeps their arrival times.
type sink struct {
	mu       sync.Mutex
	n        int
	first    time.Time
	last     time.Time
	latency  []time.Duration // for records carrying sent_ns
	received chan struct{}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	// Counting records by a marker keeps the sink cheap (it shares the machine with poller); only
	// the latency benchmark's small events are decoded.
	n := bytes.Count(body, []byte(`"eventSource":"aws:dynamodb"`))
	var lat []time.Duration
	if bytes.Contains(body, []byte("sent_ns")) {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, rec := range ev.Records {
			if v, ok := rec.Change.NewImage["sent_ns"]; ok {
				ns, _ := strconv.ParseInt(v.Number(), 10, 64)
				lat = append(lat, now.Sub(time.Unix(0, ns)))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		s.first = now
	}
	s.n += n
	s.last = now
	s.latency = append(s.latency, lat...)
	select {
	case s.received <- struct{}{}:
	default:
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// runPoller starts the binary on table with the sink; stop it with the returned func.
func runPoller(b *testing.B, endpoint, table, sinkURL string, batchSize int) func() {
	b.Helper()
	cmd := startBenchPoller(b, endpoint, table, fmt.Sprintf(`batch_size: %d
    sink: {type: http, url: %s}`, batchSize, sinkURL))
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
}

// startBenchPoller starts the binary with one pipeline, bench, on table; knobs are the pipeline's
// lines after its source (indented 4 spaces from the second on), the sink among them.
func startBenchPoller(b *testing.B, endpoint, table, knobs string) *exec.Cmd {
	b.Helper()
	port := freePort(b)
	cfg := fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: poller-leases-%d}
server: {listen: "127.0.0.1:%d"}
log: {level: warn}
pipelines:
  - name: bench
    source: {table: %s}
    %s
`, endpoint, time.Now().UnixNano(), port, table, knobs)
	return testenv.StartPoller(b, pollerBin, cfg)
}

func waitCount(b *testing.B, s *sink, n int, timeout time.Duration) {
	deadline := time.After(timeout)
	for s.count() < n {
		select {
		case <-s.received:
		case <-deadline:
			b.Fatalf("sink got %d of %d records within %s", s.count(), n, timeout)
		}
	}
}

// BenchmarkDrain drains a backlog of 20,000 records: first with a bare GetRecords loop (once to warm
// DynamoDB Local's JVM, once measured), then with poller (batch_size 100, Lambda's default, and 1000)
// on the same stream, to an http sink. "records/s" counts from the first delivery to the last;
// "incl_startup" from the process start.
func BenchmarkDrain(b *testing.B) {
	for range b.N {
		endpoint, table := setup(b, backlog)
		bareDrain(b, endpoint, table, backlog) // warms DynamoDB Local's JVM, so both are measured warm
		b.ReportMetric(bareDrain(b, endpoint, table, backlog), "bare_records/s")
		for _, bs := range []int{100, 1000} {
			s := &sink{received: make(chan struct{}, 1)}
			srv := httptest.NewServer(s)
			start := time.Now()
			stop := runPoller(b, endpoint, table, srv.URL, bs)
			waitCount(b, s, backlog, 5*time.Minute)
			total := time.Since(start)
			stop()
			srv.Close()
			s.mu.Lock()
			steady := float64(s.n) / s.last.Sub(s.first).Seconds()
			s.mu.Unlock()
			b.ReportMetric(steady, fmt.Sprintf("poller_batch%d_records/s", bs))
			b.ReportMetric(float64(backlog)/total.Seconds(), fmt.Sprintf("poller_batch%d_incl_startup_records/s", bs))
		}
	}
}

// BenchmarkLatency writes one item every 50 ms for 15 s while poller runs at the default 250 ms poll
// interval, and reports the write-to-sink latency percentiles (the writer's clock and the sink's are
// the same machine's).
func BenchmarkLatency(b *testing.B) {
	for range b.N {
		endpoint, table := setup(b, 0)
		s := &sink{received: make(chan struct{}, 1)}
		srv := httptest.NewServer(s)
		stop := runPoller(b, endpoint, table, srv.URL, 100)
		db := client(endpoint)
		ctx := context.Background()
		// Warm up: the first record proves poller is polling.
		warm := func(i int) {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("w-%d", i)},
			}})
			if err != nil {
				b.Fatal(err)
			}
		}
		warm(0)
		waitCount(b, s, 1, time.Minute)
		const writes = 300
		tick := time.NewTicker(50 * time.Millisecond)
		for i := range writes {
			<-tick.C
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
				"pk":      &types.AttributeValueMemberS{Value: fmt.Sprintf("l-%d", i)},
				"sent_ns": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixNano(), 10)},
			}})
			if err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		waitCount(b, s, writes+1, time.Minute)
		stop()
		srv.Close()
		s.mu.Lock()
		lat := slices.Clone(s.latency)
		s.mu.Unlock()
		slices.Sort(lat)
		pct := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))].Seconds() * 1000 }
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(lat[len(lat)-1].Seconds()*1000, "max_ms")
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a poller's server.
func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
