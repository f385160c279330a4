package service

import (
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/pkg/config"
)

// TestManyReadersReuseTheirConnections: 64 readers polling at once through the service's Streams
// client keep reusing their connections, instead of most calls opening a new one (as they did with
// the SDK's default pool of 10 idle connections per host).
func TestManyReadersReuseTheirConnections(t *testing.T) {
	const readers, callsEach = 64, 20
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	srv := streamstest.New(t, streamstest.Options{})
	st := srv.CreateStream("T", streamstest.KeysOnly)
	shards := st.OpenShards(readers)
	awsCfg, err := loadAWS(t.Context(), config.AWS{Region: "us-east-1"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	_, client := newClients(awsCfg, srv.URL)

	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for _, shard := range shards {
		wg.Go(func() {
			it, err := client.GetShardIterator(t.Context(), &dynamodbstreams.GetShardIteratorInput{
				StreamArn: aws.String(st.ARN()), ShardId: aws.String(shard), ShardIteratorType: "TRIM_HORIZON"})
			if err != nil {
				errs <- err
				return
			}
			iter := it.ShardIterator
			for range callsEach {
				out, err := client.GetRecords(t.Context(), &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					errs <- err
					return
				}
				iter = out.NextShardIterator
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// At most one connection per reader is needed; a few more may open when a connection is
	// handed back just after another reader asked for one, or when the SDK drops one (see
	// streamstest.Client). The default pool opened one for most of the 1,344 calls.
	calls := readers * (callsEach + 1)
	if got := srv.Conns(); got > calls/4 {
		t.Errorf("%d connections opened for %d calls by %d readers, want at most %d", got, calls, readers, calls/4)
	}
}

// TestClientKeepsItsCallTimeout: sizing the pool keeps the overall timeout of a call, without which
// one hung connection would freeze a lease round.
func TestClientKeepsItsCallTimeout(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	awsCfg, err := loadAWS(t.Context(), config.AWS{Region: "us-east-1"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTPClient is a %T, want *http.BuildableClient", awsCfg.HTTPClient)
	}
	if got := c.GetTimeout(); got != awsCallTimeout {
		t.Errorf("call timeout = %v, want %v", got, awsCallTimeout)
	}
	if tr := c.GetTransport(); tr.MaxIdleConnsPerHost != maxIdleConnsPerHost || tr.MaxConnsPerHost != 0 {
		t.Errorf("transport keeps %d idle connections per host and caps them at %d, want %d and 0 (no cap)",
			tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, maxIdleConnsPerHost)
	}
}

// TestPollingClientKeepsTimeoutAndPool: the DynamoDB and DynamoDB Streams clients call through a
// plain http.Client on the SDK client's transport, with the same call timeout and pool sizing, so
// that net/http enforces the timeout on the request's context (no goroutines per call).
func TestPollingClientKeepsTimeoutAndPool(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	awsCfg, err := loadAWS(t.Context(), config.AWS{Region: "us-east-1"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ddb, streams := newClients(awsCfg, "")
	c, ok := streams.Options().HTTPClient.(oneWrite)
	if !ok {
		t.Fatalf("Streams HTTPClient is a %T, want oneWrite", streams.Options().HTTPClient)
	}
	if ddb.Options().HTTPClient != c {
		t.Errorf("DynamoDB and DynamoDB Streams clients do not share one HTTP client")
	}
	if c.Timeout != awsCallTimeout {
		t.Errorf("call timeout = %v, want %v", c.Timeout, awsCallTimeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is a %T, want *http.Transport (net/http enforces Timeout with goroutines per call otherwise)", c.Transport)
	}
	if tr.MaxIdleConnsPerHost != maxIdleConnsPerHost || tr.MaxConnsPerHost != 0 || tr.IdleConnTimeout != idleConnTimeout {
		t.Errorf("transport keeps %d idle connections per host for %v and caps them at %d, want %d for %v and 0 (no cap)",
			tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.MaxConnsPerHost, maxIdleConnsPerHost, idleConnTimeout)
	}
	if tr.ReadBufferSize != readBufferSize {
		t.Errorf("read buffer %d bytes, want %d", tr.ReadBufferSize, readBufferSize)
	}
	if _, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); !ok {
		t.Errorf("the shared config's HTTPClient (the sinks') is a %T, want the SDK's *BuildableClient", awsCfg.HTTPClient)
	}
}
