package streamstest_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	st "github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

func dynamoClient(url string) *dynamodb.Client {
	return dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = st.ConnectionRetryer()
	})
}

// TestOneEndpoint is the poller's set-up: one endpoint_url, a lease table in DynamoDB Local, the
// stream here.
func TestOneEndpoint(t *testing.T) {
	e := newEnv(t, st.Options{Upstream: testenv.DynamoDBLocal(t)})
	ddb := dynamoClient(e.srv.URL)
	s := e.srv.CreateStream("GameScores", st.NewAndOldImages, st.WithKeySchema("UserId", "GameTitle"))
	leases := fmt.Sprintf("leases-%d", time.Now().UnixNano()) // DynamoDB Local outlives one run under -count

	t.Run("DescribeTable of the streamed table is answered here, with its stream", func(t *testing.T) {
		out, err := ddb.DescribeTable(e.ctx, &dynamodb.DescribeTableInput{TableName: aws.String("GameScores")})
		if err != nil {
			t.Fatalf("DescribeTable() error = %v", err)
		}
		tb := out.Table
		if aws.ToString(tb.LatestStreamArn) != s.ARN() || aws.ToString(tb.LatestStreamLabel) != s.Label() ||
			!aws.ToBool(tb.StreamSpecification.StreamEnabled) || tb.StreamSpecification.StreamViewType != ddbtypes.StreamViewTypeNewAndOldImages ||
			tb.TableStatus != ddbtypes.TableStatusActive || len(tb.KeySchema) != 2 {
			t.Errorf("DescribeTable() = %+v, want ACTIVE with stream %s", tb, s.ARN())
		}
		// The ARN it gives is one the streams client can describe.
		if _, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: tb.LatestStreamArn}); err != nil {
			t.Errorf("DescribeStream(LatestStreamArn) error = %v", err)
		}
	})
	t.Run("a lease table lives upstream, conditional writes and all", func(t *testing.T) {
		_, err := ddb.CreateTable(e.ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(leases),
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			BillingMode:          ddbtypes.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatalf("CreateTable() through the proxy error = %v", err)
		}
		put := &dynamodb.PutItemInput{
			TableName:           aws.String(leases),
			Item:                map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "s1"}},
			ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
		}
		if _, err := ddb.PutItem(e.ctx, put); err != nil {
			t.Fatalf("PutItem() error = %v", err)
		}
		var ccf *ddbtypes.ConditionalCheckFailedException
		if _, err := ddb.PutItem(e.ctx, put); !errors.As(err, &ccf) {
			t.Errorf("PutItem() again error = %v, want *ConditionalCheckFailedException from DynamoDB Local", err)
		}
		out, err := ddb.DescribeTable(e.ctx, &dynamodb.DescribeTableInput{TableName: aws.String(leases)})
		if err != nil || aws.ToString(out.Table.TableName) != leases || out.Table.LatestStreamArn != nil {
			t.Errorf("DescribeTable(leases) = %+v, error %v; want DynamoDB Local's table without a stream", out, err)
		}
		if got := e.srv.Calls("PutItem"); got != 2 {
			t.Errorf("Calls(PutItem) = %d, want 2", got)
		}
	})
	t.Run("a hook on a proxied operation answers here and nothing is written", func(t *testing.T) {
		e.srv.Fault("PutItem", always(&st.APIError{Code: "ProvisionedThroughputExceededException", Message: "slow down", Status: http.StatusBadRequest}))
		defer e.srv.Fault("PutItem", nil)
		_, err := ddb.PutItem(e.ctx, &dynamodb.PutItemInput{TableName: aws.String(leases),
			Item: map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "s2"}}})
		var pte *ddbtypes.ProvisionedThroughputExceededException
		if !errors.As(err, &pte) {
			t.Fatalf("PutItem() under a hook error = %v, want *ProvisionedThroughputExceededException", err)
		}
		out, err := ddb.GetItem(e.ctx, &dynamodb.GetItemInput{TableName: aws.String(leases),
			Key: map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "s2"}}})
		if err != nil || out.Item != nil {
			t.Errorf("GetItem(s2) = %v, error %v; want no item", out.Item, err)
		}
	})
}

func TestWithoutUpstream(t *testing.T) {
	t.Run("a DynamoDB call is an UnknownOperationException, DescribeTable of a streamed table still works", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		e.srv.CreateStream("T", st.KeysOnly)
		ddb := dynamoClient(e.srv.URL)
		_, err := ddb.ListTables(e.ctx, &dynamodb.ListTablesInput{})
		if errorCode(err) != "UnknownOperationException" {
			t.Errorf("ListTables() error = %v, want UnknownOperationException", err)
		}
		if _, err := ddb.DescribeTable(e.ctx, &dynamodb.DescribeTableInput{TableName: aws.String("T")}); err != nil {
			t.Errorf("DescribeTable(T) error = %v", err)
		}
	})
	t.Run("DescribeTable follows the table's latest stream, and Stream finds streams by ARN", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		ddb := dynamoClient(e.srv.URL)
		first := e.srv.CreateStream("T", st.KeysOnly)
		e.clock.Advance(time.Second)
		second := e.srv.CreateStream("T", st.NewImageOnly)
		out, err := ddb.DescribeTable(e.ctx, &dynamodb.DescribeTableInput{TableName: aws.String("T")})
		if err != nil || aws.ToString(out.Table.LatestStreamArn) != second.ARN() || !aws.ToBool(out.Table.StreamSpecification.StreamEnabled) {
			t.Fatalf("DescribeTable(T) = %+v, error %v; want enabled stream %s", out.Table, err, second.ARN())
		}
		second.Disable()
		out, err = ddb.DescribeTable(e.ctx, &dynamodb.DescribeTableInput{TableName: aws.String("T")})
		if err != nil || aws.ToBool(out.Table.StreamSpecification.StreamEnabled) || aws.ToString(out.Table.LatestStreamArn) != second.ARN() {
			t.Errorf("DescribeTable(T) after Disable = %+v, error %v; want stream disabled, still latest", out.Table, err)
		}
		if e.srv.Stream(first.ARN()) != first || e.srv.Stream("arn:nope") != nil {
			t.Errorf("Stream(ARN) does not find the streams by ARN")
		}
	})
	t.Run("an unreachable upstream is an InternalServerError", func(t *testing.T) {
		e := newEnv(t, st.Options{Upstream: "http://127.0.0.1:1"})
		_, err := dynamoClient(e.srv.URL).ListTables(e.ctx, &dynamodb.ListTablesInput{})
		var ise *ddbtypes.InternalServerError
		if !errors.As(err, &ise) {
			t.Errorf("ListTables() error = %v, want *InternalServerError", err)
		}
	})
}
