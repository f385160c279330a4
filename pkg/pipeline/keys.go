package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// The table's partition key picks a record's lane (parallelization_factor): one partition key's
// records must stay in one lane to stay in order. A shard worker started while the key is unknown
// reads with one lane for its whole life (dispatch.Dispatcher with no HashKey), which keeps every key
// in order; workers started once the key is known use every lane. The key is learnt from
// DescribeTable, or from DescribeStream's key schema, whichever answers first; it never changes for
// a table.

// tableOf returns the table name of a stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL),
// or "" when the ARN has no table part.
func tableOf(streamARN string) string {
	_, rest, ok := strings.Cut(streamARN, ":table/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/stream/")
	return name
}

// hashKeyOf returns the table's partition key attribute from DescribeTable.
func hashKeyOf(ctx context.Context, api TablesAPI, table string) (string, error) {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	if out.Table != nil {
		for _, k := range out.Table.KeySchema {
			if k.KeyType == types.KeyTypeHash && aws.ToString(k.AttributeName) != "" {
				return aws.ToString(k.AttributeName), nil
			}
		}
	}
	return "", fmt.Errorf("describe table %s: no HASH attribute in the key schema", table)
}

// learnHashKey sets st.hashKey, if unknown, from listed (the HASH attribute of DescribeStream's key
// schema; "" when the listing failed) or, failing that, from DescribeTable. It runs with each refresh
// while the key is unknown: every tick until the stream was first described, then every refresh
// interval.
func (p *Pipeline) learnHashKey(ctx context.Context, st *state, listed string) {
	if st.hashKey == "" {
		st.hashKey = listed
	}
	if st.hashKey != "" {
		return
	}
	table := p.Config.Source.Table
	if table == "" {
		table = tableOf(st.stream.ARN)
	}
	if p.Tables == nil || table == "" {
		return
	}
	key, err := hashKeyOf(ctx, p.Tables, table)
	if err != nil {
		p.Log.Warn("the table's key schema is unknown: shards started meanwhile read with one lane", zap.Error(err))
		return
	}
	st.hashKey = key
}
