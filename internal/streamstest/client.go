package streamstest

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/poller-dev/poller/internal/testenv"
)

// Client returns a real DynamoDB Streams client for this server, for tests that call the API
// themselves: test credentials, the server's region, and a retryer that retries connection errors
// only, at once and without a retry quota, so every error a test injects reaches the caller
// unretried. optFns adjust the client further.
//
// Why retry connection errors at all: against a server this fast, aws-sdk-go-v2 (with net/http)
// often gives up the connection of a request whose answer has already arrived, and a large answer
// (a GetRecords page) then fails with "use of closed network connection" (aws-sdk-go-v2#2737). The
// SDK's default retryer retries that; a client built with RetryMaxAttempts 1 would see it.
func (s *Server) Client(optFns ...func(*dynamodbstreams.Options)) *dynamodbstreams.Client {
	cfg := testenv.AWSConfig()
	cfg.Region = s.region
	return dynamodbstreams.NewFromConfig(cfg, append([]func(*dynamodbstreams.Options){func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(s.URL)
		o.Retryer = ConnectionRetryer()
	}}, optFns...)...)
}

// ConnectionRetryer is the retryer Client uses: up to 5 attempts, connection errors only, no delay,
// no retry quota. Give it to other clients of the server (e.g. DynamoDB's, through Upstream) with
// o.Retryer = streamstest.ConnectionRetryer().
func ConnectionRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 5
		o.Retryables = []retry.IsErrorRetryable{retry.NoRetryCanceledError{}, retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}
