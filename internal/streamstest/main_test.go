package streamstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyMain(m) }

// t0 is the start of every manual clock: a fixed time keeps shard IDs and labels reproducible.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// env is one scenario's server, clock and real SDK client (srv.Client: injected faults show).
type env struct {
	srv    *streamstest.Server
	clock  *streamstest.ManualClock
	client *dynamodbstreams.Client
	ctx    context.Context
}

func newEnv(t *testing.T, opts streamstest.Options) *env {
	t.Helper()
	clock := streamstest.NewManualClock(t0)
	if opts.Clock == nil {
		opts.Clock = clock
	}
	srv := streamstest.New(t, opts)
	return &env{srv: srv, clock: clock, client: srv.Client(), ctx: t.Context()}
}

// defaultRetryClient is a client with the SDK's default retryer, which retries throttling.
func defaultRetryClient(url string) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(testenv.AWSConfig(), func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(url)
	})
}

// errorCode is the API error code of err, "" if it is none.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// iter gets a shard iterator.
func (e *env) iter(t *testing.T, st *streamstest.Stream, shardID string, typ types.ShardIteratorType, seq string) string {
	t.Helper()
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.ARN()), ShardId: aws.String(shardID), ShardIteratorType: typ}
	if seq != "" {
		in.SequenceNumber = aws.String(seq)
	}
	out, err := e.client.GetShardIterator(e.ctx, in)
	if err != nil {
		t.Fatalf("GetShardIterator(%s %s) error = %v", typ, seq, err)
	}
	return aws.ToString(out.ShardIterator)
}

// readAll follows an iterator until it ends or an empty page, returning the sequence numbers read
// and the iterator to go on with ("" when the shard is finished).
func (e *env) readAll(t *testing.T, it string) ([]string, string) {
	t.Helper()
	var seqs []string
	for it != "" {
		out, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
		if err != nil {
			t.Fatalf("GetRecords() error = %v", err)
		}
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.Dynamodb.SequenceNumber))
		}
		it = aws.ToString(out.NextShardIterator)
		if len(out.Records) == 0 {
			break
		}
	}
	return seqs, it
}

// listAll pages DescribeStream to the end and returns the shards and the number of calls made.
func (e *env) listAll(t *testing.T, st *streamstest.Stream, filter *types.ShardFilter) ([]types.Shard, int) {
	t.Helper()
	var shards []types.Shard
	var start *string
	for page := 1; ; page++ {
		if page > 1000 {
			t.Fatal("DescribeStream: more than 1000 pages")
		}
		out, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{
			StreamArn: aws.String(st.ARN()), ExclusiveStartShardId: start, ShardFilter: filter,
		})
		if err != nil {
			t.Fatalf("DescribeStream() error = %v", err)
		}
		shards = append(shards, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return shards, page
		}
	}
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
