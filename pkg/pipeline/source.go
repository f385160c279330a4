package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// tableAPI is the part of the DynamoDB API that resolves a table's stream.
type tableAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// errNoStream says the table has no stream enabled: a config problem, not a transient one.
var errNoStream = errors.New("the table has no stream enabled (StreamSpecification.StreamEnabled)")

// resolveStream returns the ARN of the table's current stream.
func resolveStream(ctx context.Context, api tableAPI, table string) (string, error) {
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
