package service

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/config"
)

// canned answers every request with an empty GetRecords page, without a network: what is left is
// the client's own cost per call.
type canned struct{}

var emptyPage = []byte(`{"NextShardIterator":"arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2024|shardId-00000001|iterator","Records":[]}`)

func (canned) Do(*http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(emptyPage)))
	h.Set("X-Amzn-Requestid", "REQ")
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(emptyPage)), ContentLength: int64(len(emptyPage))}, nil
}

// BenchmarkGetRecordsClient is the Streams client's CPU and allocations per GetRecords call, the
// network left out.
func BenchmarkGetRecordsClient(b *testing.B) {
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	awsCfg, err := loadAWS(b.Context(), config.AWS{Region: "us-east-1"}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	awsCfg.HTTPClient = canned{}
	_, client := newClients(awsCfg, "")
	in := &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String("it"), Limit: aws.Int32(1000)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.GetRecords(b.Context(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetRecordsLoopback is one GetRecords call through the service's Streams client and its
// HTTP transport over a kept-alive loopback connection, to a server that answers an empty page:
// the client's cost per call with the network in (the server's own allocations are counted too).
// goroutines/op counts the goroutines started per call, on both sides (the server starts one per
// request); conns/op the connections opened: calls back to back sometimes ask for a connection
// before the last one is back in the pool, and net/http dials another meanwhile.
func BenchmarkGetRecordsLoopback(b *testing.B) {
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(emptyPage)
	}))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	awsCfg, err := loadAWS(b.Context(), config.AWS{Region: "us-east-1"}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	_, client := newClients(awsCfg, srv.URL)
	in := &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String("it"), Limit: aws.Int32(1000)}
	created := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(created)
	before := created[0].Value.Uint64()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.GetRecords(b.Context(), in); err != nil {
			b.Fatal(err)
		}
	}
	metrics.Read(created)
	b.ReportMetric(float64(created[0].Value.Uint64()-before)/float64(b.N), "goroutines/op")
	b.ReportMetric(float64(conns.Load())/float64(b.N), "conns/op")
}
