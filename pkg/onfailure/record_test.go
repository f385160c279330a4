package onfailure

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lambdaExample is the SQS/SNS invocation record of Lambda's documentation for a DynamoDB stream
// (Lambda developer guide, services-dynamodb-errors).
const lambdaExample = `{
  "requestContext": {
    "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
    "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
    "condition": "RetryAttemptsExhausted",
    "approximateInvokeCount": 1
  },
  "responseContext": {
    "statusCode": 200,
    "executedVersion": "$LATEST",
    "functionError": "Unhandled"
  },
  "version": "1.0",
  "timestamp": "2019-11-14T00:13:49.717Z",
  "DDBStreamBatchInfo": {
    "shardId": "shardId-00000001573689847184-864758bb",
    "startSequenceNumber": "800000000003126276362",
    "endSequenceNumber": "800000000003126276362",
    "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
    "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
    "batchSize": 1,
    "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
  }
}`

// exampleFailure is the failure behind lambdaExample.
func exampleFailure() Failure {
	return Failure{
		Batch:       testBatch(1),
		Condition:   RetryAttemptsExhausted,
		InvokeCount: 1,
		LastErr:     errors.New("POST http://h/events: status 200 OK... (whatever failed)"),
		StatusCode:  200,
		Time:        time.Date(2019, 11, 14, 0, 13, 49, 717_000_000, time.UTC),
		RequestID:   "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
		FunctionARN: "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
	}
}

// withoutErrorMessage returns the record's JSON without responseContext.errorMessage, the one field
// the poller adds to Lambda's record.
func withoutErrorMessage(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	rc := m["responseContext"].(map[string]any)
	msg, _ := rc["errorMessage"].(string)
	delete(rc, "errorMessage")
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out), msg
}

func TestNewRecordMatchesLambdasDocumentedRecord(t *testing.T) {
	rec, err := NewRecord(exampleFailure(), false)
	require.NoError(t, err)
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	got, msg := withoutErrorMessage(t, b)
	assert.JSONEq(t, lambdaExample, got)
	assert.Equal(t, exampleFailure().LastErr.Error(), msg, "errorMessage carries the last error")
	assert.NotContains(t, string(b), "payload", "metadata only without payload")
}

func TestNewRecord(t *testing.T) {
	t.Run("a batch of several records spans from its first to its last record", func(t *testing.T) {
		f := exampleFailure()
		f.Batch = testBatch(3)
		rec, err := NewRecord(f, false)
		require.NoError(t, err)
		bi := rec.DDBStreamBatchInfo
		assert.Equal(t, "800000000003126276362", bi.StartSequenceNumber)
		assert.Equal(t, "800000000003126276364", bi.EndSequenceNumber)
		assert.Equal(t, "2019-11-14T00:13:19Z", bi.ApproximateArrivalOfFirstRecord)
		assert.Equal(t, "2019-11-14T00:13:21Z", bi.ApproximateArrivalOfLastRecord)
		assert.Equal(t, 3, bi.BatchSize)
	})
	t.Run("the payload is the whole Lambda event as a JSON string", func(t *testing.T) {
		f := exampleFailure()
		f.Batch = testBatch(2)
		rec, err := NewRecord(f, true)
		require.NoError(t, err)
		var ev events.DynamoDBEvent
		require.NoError(t, json.Unmarshal([]byte(rec.Payload), &ev))
		assert.Equal(t, f.Batch.Event(), ev)
	})
	t.Run("records discarded for their age without a delivery have no function error", func(t *testing.T) {
		rec, err := NewRecord(Failure{Batch: testBatch(1), Condition: RecordAgeExceeded}, false)
		require.NoError(t, err)
		b, err := json.Marshal(rec.ResponseContext)
		require.NoError(t, err)
		assert.JSONEq(t, `{"statusCode":0,"executedVersion":"$LATEST"}`, string(b))
		assert.Equal(t, RecordAgeExceeded, rec.RequestContext.Condition)
		assert.Zero(t, rec.RequestContext.ApproximateInvokeCount)
	})
	t.Run("defaults: a random request id, the pipeline's ARN and the time now, with milliseconds", func(t *testing.T) {
		before := time.Now().UTC().Truncate(time.Millisecond)
		rec, err := NewRecord(Failure{Batch: testBatch(1), Condition: RetryAttemptsExhausted, InvokeCount: 4}, false)
		require.NoError(t, err)
		assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, rec.RequestContext.RequestID)
		assert.Equal(t, "arn:aws:poller:us-east-2:123456789012:pipeline:congrats", rec.RequestContext.FunctionARN)
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, rec.Timestamp)
		ts, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
		require.NoError(t, err)
		assert.False(t, ts.Before(before), "timestamp %s before %s", ts, before)
		other, err := NewRecord(Failure{Batch: testBatch(1), Condition: RetryAttemptsExhausted}, false)
		require.NoError(t, err)
		assert.NotEqual(t, rec.RequestContext.RequestID, other.RequestContext.RequestID)
	})
	t.Run("a long error message is cut", func(t *testing.T) {
		f := exampleFailure()
		f.LastErr = errors.New(strings.Repeat("x", 5000))
		rec, err := NewRecord(f, false)
		require.NoError(t, err)
		assert.Len(t, rec.ResponseContext.ErrorMessage, 1024+3)
	})
	t.Run("an empty batch or a missing condition is an error", func(t *testing.T) {
		_, err := NewRecord(Failure{Batch: testBatch(0), Condition: RetryAttemptsExhausted}, false)
		require.ErrorContains(t, err, "no records")
		_, err = NewRecord(Failure{Batch: testBatch(1)}, false)
		require.ErrorContains(t, err, "no condition")
	})
}

func TestFunctionARN(t *testing.T) {
	tests := []struct{ name, stream, pipeline, want string }{
		{"a stream ARN gives its partition, region and account", "arn:aws-cn:dynamodb:cn-north-1:1:table/T/stream/L", "p", "arn:aws-cn:poller:cn-north-1:1:pipeline:p"},
		{"an unparsable stream ARN leaves region and account empty", "nope", "p", "arn:aws:poller:::pipeline:p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FunctionARN(tt.stream, tt.pipeline))
		})
	}
}

func TestObjectKeyFollowsLambdasLayout(t *testing.T) {
	at := time.Date(2024, 3, 8, 7, 5, 9, 0, time.FixedZone("X", 3600))
	key := ObjectKey("failed/", "my pipeline", "shardId-0001", at)
	assert.Regexp(t, regexp.MustCompile(`^failed/aws/lambda/my%20pipeline/shardId-0001/2024/03/08/2024-03-08T06\.05\.09-[0-9a-f-]{36}$`), key)
	assert.NotEqual(t, key, ObjectKey("failed/", "my pipeline", "shardId-0001", at), "two reports in one second get two keys")
}
