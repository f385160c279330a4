package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go/logging"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/config"
)

// awsCallTimeout bounds one HTTP exchange with DynamoDB or DynamoDB Streams (the SDK retries).
const awsCallTimeout = 10 * time.Second

// maxIdleConnsPerHost bounds the kept-alive connections to one endpoint. Every shard reader has one
// GetRecords call in flight at most, so the connections in use at once follow the number of shards
// the process reads (plus the lease writes in flight); the pool keeps as many as were in use at
// once, up to this bound, reuses the most recent first and closes the rest after idleConnTimeout. The SDK's default keeps 10: with hundreds of readers most calls then opened a
// new connection (76% at 1,000 shards), a TLS handshake each against AWS. 4,096 covers the largest
// share of a table one process is meant to read; a connection costs about 10-20 KiB while kept.
const maxIdleConnsPerHost = 4096

// idleConnTimeout closes a kept-alive connection unused this long. The readers poll out of step
// (shards.RandomStagger), so few calls are in flight at once; what a burst opened (a start, a
// failover: every reader asks for its iterator at once) is closed within this time rather than the
// SDK's 90 s, and a lease round every renew_interval keeps what it needs.
const idleConnTimeout = 30 * time.Second

// loadAWS loads the SDK config from the default chain (environment, profile, ECS/EKS metadata),
// with the config's region, and tunes its HTTP client and retries for a daemon.
func loadAWS(ctx context.Context, c config.AWS, log *zap.Logger) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	awsCfg.Logger = sdkLogger(log)
	// The SDK's default client has no overall timeout: one hung connection would freeze a
	// pipeline's lease round (renewals, heartbeat, failover). Every call poller makes is small
	// (GetRecords answers at most 1 MB), so a whole exchange gets awsCallTimeout.
	awsCfg.HTTPClient = awshttp.NewBuildableClient().WithTimeout(awsCallTimeout).WithTransportOptions(sizePool)
	// The SDK's standard retryer keeps a client-wide retry quota; a long throttling spell empties it
	// and from then on calls fail without their retries. A daemon that retries everything itself
	// with backoff wants the SDK's per-call retries always, so the quota is off.
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
	}
	return awsCfg, nil
}

// sizePool lets the connection pool grow with the shard readers (maxIdleConnsPerHost). MaxIdleConns
// counts every host: DynamoDB and DynamoDB Streams are two hosts on AWS. The SDK's cap of 2,048
// connections per host is lifted: a reader over it would wait for another's call to end, and the
// readers already bound the connections.
func sizePool(tr *http.Transport) {
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	tr.MaxIdleConns = 2 * maxIdleConnsPerHost
	tr.MaxConnsPerHost = 0
	tr.IdleConnTimeout = idleConnTimeout
}

// newClients returns the DynamoDB and DynamoDB Streams clients, both at endpoint when it is set
// (DynamoDB Local). They share one HTTP client (pollingClient).
func newClients(awsCfg aws.Config, endpoint string) (*dynamodb.Client, *dynamodbstreams.Client) {
	awsCfg.HTTPClient = pollingClient(awsCfg.HTTPClient)
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	streams := dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return ddb, streams
}

// pollingClient is the HTTP client of the DynamoDB and DynamoDB Streams clients, which every
// shard reader calls four times a second: the SDK's client (c, a *BuildableClient) unwrapped to
// a plain http.Client on the same transport, with the same overall timeout.
//
// The SDK's client wraps its transport in a RoundTripper net/http does not know, and for such a
// transport Client.Timeout is enforced the legacy way: every call starts two goroutines (a timer
// watcher and a Request.Cancel watcher) and allocates their channels and timer. With the
// http.Transport itself, net/http puts the deadline on the request's context instead. What the
// wrapper adds (a stub Location for an S3 redirect without one) DynamoDB never needs, and
// redirects are not followed: DynamoDB answers none, and one would come back to the SDK as an
// error answer. Requests go out in one write (oneWrite). Any other client (a test's) is kept as it
// is.
func pollingClient(c aws.HTTPClient) aws.HTTPClient {
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		return c
	}
	tr := b.GetTransport()
	tr.ReadBufferSize = readBufferSize
	return oneWrite{&http.Client{
		Transport:     tr,
		Timeout:       b.GetTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// readBufferSize is the read buffer of each kept connection of the DynamoDB and Streams clients
// (net/http's default: 4 KiB). There is one connection per shard reader, and what it mostly reads
// is an empty page: headers and a body of well under 1 KiB. A larger answer is read past the
// buffer, straight into the SDK's body buffer, so it costs no more reads; 2 KiB keeps a margin
// for an answer with longer headers.
const readBufferSize = 2 << 10

// maxOneWriteBody is the largest request body oneWrite copies: every GetRecords, GetShardIterator
// and lease-table request is far smaller; a larger one goes out as it is.
const maxOneWriteBody = 64 << 10

// oneWrite sends each request with a small body in one write to the connection, headers and body
// together. net/http writes the headers first, in a write of their own, unless the body is a
// bytes.Reader (or a few other in-memory types), and the SDK hands it its body wrapped in a
// reader of its own: every call was two writes, two TCP segments (two TLS records on AWS), and
// two reads on the other side. oneWrite copies the body (a few hundred bytes) into a bytes.Reader.
type oneWrite struct{ *http.Client }

func (c oneWrite) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength <= 0 || req.ContentLength > maxOneWriteBody {
		return c.Client.Do(req)
	}
	body := make([]byte, req.ContentLength)
	_, err := io.ReadFull(req.Body, body)
	_ = req.Body.Close() // as Do would have closed it
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return c.Client.Do(req)
}

// sdkLogger sends the AWS SDK's own log lines to zap at debug level: they are diagnostics (retries,
// and a checksum warning DynamoDB Local's error answers always cause), not events an operator acts on;
// every failure that matters reaches poller as an error and is logged where it is handled.
func sdkLogger(log *zap.Logger) logging.Logger {
	l := log.Named("aws-sdk")
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		if ce := l.Check(zap.DebugLevel, fmt.Sprintf(format, v...)); ce != nil {
			ce.Write(zap.String("sdk_level", string(c)))
		}
	})
}

// workerID is the configured worker ID, else the hostname plus a random suffix, so two processes on
// one host never share an ID.
func workerID(configured string) string {
	if configured != "" {
		return configured
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "poller"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
