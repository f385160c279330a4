package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB returns a DynamoDB client for endpoint with the test credentials.
func DynamoDB(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// CreateStreamTable creates a table keyed by pk (S) with a NEW_AND_OLD_IMAGES stream.
func CreateStreamTable(tb testing.TB, db *dynamodb.Client, name string) {
	tb.Helper()
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	if err != nil {
		tb.Fatalf("create table %s: %v", name, err)
	}
}

// WriteItems writes n items pk=item-000000.. (from on) with a payload of pad bytes, 25 per
// BatchWriteItem, retrying unprocessed items.
func WriteItems(tb testing.TB, db *dynamodb.Client, table string, from, n, pad int) {
	tb.Helper()
	ctx := context.Background()
	payload := strings.Repeat("x", pad)
	for i := from; i < from+n; i += 25 {
		var reqs []types.WriteRequest
		for j := i; j < min(i+25, from+n); j++ {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"pk":      &types.AttributeValueMemberS{Value: fmt.Sprintf("item-%06d", j)},
				"payload": &types.AttributeValueMemberS{Value: payload},
			}}})
		}
		in := map[string][]types.WriteRequest{table: reqs}
		for len(in[table]) > 0 {
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: in})
			if err != nil {
				tb.Fatalf("batch write: %v", err)
			}
			in = out.UnprocessedItems
		}
	}
}
