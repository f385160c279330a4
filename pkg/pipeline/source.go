package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/poller-dev/poller/pkg/wait"
	"go.uber.org/zap"
)

// TablesAPI is the part of the DynamoDB API a pipeline uses to find a table's current stream and
// its key schema; *dynamodb.Client satisfies it.
type TablesAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// errNoStream says the table has no stream enabled: a config problem, not a transient one.
var errNoStream = errors.New("the table has no stream enabled (StreamSpecification.StreamEnabled)")

// resolveStream returns the ARN of the table's current stream.
func resolveStream(ctx context.Context, api TablesAPI, table string) (string, error) {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	arn := aws.ToString(out.Table.LatestStreamArn)
	if arn == "" || (out.Table.StreamSpecification != nil && !aws.ToBool(out.Table.StreamSpecification.StreamEnabled)) {
		return "", fmt.Errorf("table %s: %w", table, errNoStream)
	}
	return arn, nil
}

// streamARN is the stream to read: the configured one, or the table's current stream, looked up
// until it answers (a table without a stream is a config error, returned at once). wait.ErrStopped:
// stop was closed first.
func (p *Pipeline) streamARN(ctx context.Context, stop <-chan struct{}) (string, error) {
	if p.Config.Source.StreamARN != "" {
		return p.Config.Source.StreamARN, nil
	}
	var arn string
	backoff := func(attempt int) time.Duration { return min(time.Duration(attempt)*time.Second, 15*time.Second) }
	err := wait.Retry(ctx, stop, backoff, func(attempt int) error {
		var err error
		arn, err = resolveStream(ctx, p.Tables, p.Config.Source.Table)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNoStream):
			return wait.Permanent(err)
		}
		p.Log.Warn("resolving the table's stream failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		return err
	})
	return arn, err
}
