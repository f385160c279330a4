package onfailure

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/plugin"
)

// checkDocumentedFields compares a received report with the failure behind it, field by field of
// Lambda's documented record, and says whether it carried the payload.
func checkDocumentedFields(t *testing.T, data []byte, f Failure, wantPayload bool) {
	t.Helper()
	var got struct {
		RequestContext struct {
			RequestID              *string `json:"requestId"`
			FunctionArn            *string `json:"functionArn"`
			Condition              *string `json:"condition"`
			ApproximateInvokeCount *int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		ResponseContext struct {
			StatusCode      *int    `json:"statusCode"`
			ExecutedVersion *string `json:"executedVersion"`
			FunctionError   *string `json:"functionError"`
		} `json:"responseContext"`
		Version            *string `json:"version"`
		Timestamp          *string `json:"timestamp"`
		DDBStreamBatchInfo struct {
			ShardID                         *string `json:"shardId"`
			StartSequenceNumber             *string `json:"startSequenceNumber"`
			EndSequenceNumber               *string `json:"endSequenceNumber"`
			ApproximateArrivalOfFirstRecord *string `json:"approximateArrivalOfFirstRecord"`
			ApproximateArrivalOfLastRecord  *string `json:"approximateArrivalOfLastRecord"`
			BatchSize                       *int    `json:"batchSize"`
			StreamArn                       *string `json:"streamArn"`
		} `json:"DDBStreamBatchInfo"`
		Payload *string `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(data, &got), "report %s", data)
	rc, resp, bi := got.RequestContext, got.ResponseContext, got.DDBStreamBatchInfo
	n := len(f.Batch.Records)
	for name, p := range map[string]*string{
		"requestContext.requestId": rc.RequestID, "requestContext.functionArn": rc.FunctionArn,
		"requestContext.condition": rc.Condition, "responseContext.executedVersion": resp.ExecutedVersion,
		"responseContext.functionError": resp.FunctionError, "version": got.Version, "timestamp": got.Timestamp,
		"DDBStreamBatchInfo.shardId": bi.ShardID, "DDBStreamBatchInfo.startSequenceNumber": bi.StartSequenceNumber,
		"DDBStreamBatchInfo.endSequenceNumber": bi.EndSequenceNumber, "DDBStreamBatchInfo.streamArn": bi.StreamArn,
		"DDBStreamBatchInfo.approximateArrivalOfFirstRecord": bi.ApproximateArrivalOfFirstRecord,
		"DDBStreamBatchInfo.approximateArrivalOfLastRecord":  bi.ApproximateArrivalOfLastRecord,
	} {
		require.NotNil(t, p, "%s is missing from %s", name, data)
	}
	require.NotNil(t, rc.ApproximateInvokeCount)
	require.NotNil(t, resp.StatusCode)
	require.NotNil(t, bi.BatchSize)
	assert.Equal(t, f.RequestID, *rc.RequestID)
	assert.Equal(t, "arn:aws:poller:us-east-2:123456789012:pipeline:congrats", *rc.FunctionArn)
	assert.Equal(t, string(f.Condition), *rc.Condition)
	assert.Equal(t, f.InvokeCount, *rc.ApproximateInvokeCount)
	assert.Equal(t, f.StatusCode, *resp.StatusCode)
	assert.Equal(t, "$LATEST", *resp.ExecutedVersion)
	assert.Equal(t, "Unhandled", *resp.FunctionError)
	assert.Equal(t, "1.0", *got.Version)
	assert.Equal(t, f.Time.UTC().Format("2006-01-02T15:04:05.000Z"), *got.Timestamp)
	assert.Equal(t, f.Batch.ShardID, *bi.ShardID)
	assert.Equal(t, f.Batch.Records[0].Change.SequenceNumber, *bi.StartSequenceNumber)
	assert.Equal(t, f.Batch.Records[n-1].Change.SequenceNumber, *bi.EndSequenceNumber)
	assert.Equal(t, "2019-11-14T00:13:19Z", *bi.ApproximateArrivalOfFirstRecord)
	assert.Equal(t, fmt.Sprintf("2019-11-14T00:13:%02dZ", 19+n-1), *bi.ApproximateArrivalOfLastRecord)
	assert.Equal(t, n, *bi.BatchSize)
	assert.Equal(t, f.Batch.StreamARN, *bi.StreamArn)
	if !wantPayload {
		assert.Nil(t, got.Payload, "SQS and SNS reports carry no payload")
		return
	}
	require.NotNil(t, got.Payload, "the report carries the payload")
	var ev events.DynamoDBEvent
	require.NoError(t, json.Unmarshal([]byte(*got.Payload), &ev))
	assert.Equal(t, f.Batch.Event(), ev, "the payload is the batch's Lambda event")
}

// testFailure is a failure of a batch of n records at a fixed time.
func testFailure(n int) Failure {
	f := exampleFailure()
	f.Batch = testBatch(n)
	f.FunctionARN = ""
	f.InvokeCount = 3
	f.StatusCode = 502
	return f
}

// motoAWS returns the SDK config and the endpoint for moto, with every request on testTransport.
func motoAWS(t *testing.T) (aws.Config, string) {
	t.Helper()
	endpoint := testenv.Moto(t)
	cfg := testenv.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: testTransport}
	return cfg, endpoint
}

func TestSQSDestination(t *testing.T) {
	cfg, endpoint := motoAWS(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("failed-" + strings.ToLower(t.Name()))})
	require.NoError(t, err)

	d, err := Registry.New("sqs", &SQSConfig{QueueURL: *q.QueueUrl, AWSOverrides: AWSOverrides{EndpointURL: endpoint}}, Deps{AWS: cfg})
	require.NoError(t, err)
	defer d.Close(ctx)
	// A batch whose payload alone is over the 256 KB message limit still fits: the message is
	// metadata only.
	f := testFailure(3)
	big := events.NewStringAttribute(strings.Repeat("x", 200*1024))
	for _, r := range f.Batch.Records {
		r.Change.NewImage["big"] = big
	}
	require.NoError(t, d.Send(ctx, f))

	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	require.NoError(t, err)
	require.Len(t, out.Messages, 1)
	checkDocumentedFields(t, []byte(*out.Messages[0].Body), f, false)
}

func TestSNSDestination(t *testing.T) {
	cfg, endpoint := motoAWS(t)
	ctx := context.Background()
	sqsClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	snsClient := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(endpoint) })
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("failed-topic")})
	require.NoError(t, err)
	q, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("failed-topic-reader")})
	require.NoError(t, err)
	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	require.NoError(t, err)
	_, err = snsClient.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])})
	require.NoError(t, err)

	d, err := Registry.New("sns", &SNSConfig{TopicARN: *topic.TopicArn, AWSOverrides: AWSOverrides{EndpointURL: endpoint}}, Deps{AWS: cfg})
	require.NoError(t, err)
	defer d.Close(ctx)
	f := testFailure(2)
	require.NoError(t, d.Send(ctx, f))

	out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
	require.NoError(t, err)
	require.Len(t, out.Messages, 1)
	var note struct{ Type, TopicArn, Message string }
	require.NoError(t, json.Unmarshal([]byte(*out.Messages[0].Body), &note))
	assert.Equal(t, "Notification", note.Type)
	assert.Equal(t, *topic.TopicArn, note.TopicArn)
	checkDocumentedFields(t, []byte(note.Message), f, false)
}

func TestS3Destination(t *testing.T) {
	cfg, endpoint := motoAWS(t)
	ctx := context.Background()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	// A bucket of its own per run: moto is shared by the test binary and -count reruns the test.
	bucket := fmt.Sprintf("failed-batches-%d", time.Now().UnixNano())
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)

	d, err := Registry.New("s3", &S3Config{Bucket: bucket, Prefix: "poller/", ForcePathStyle: true,
		AWSOverrides: AWSOverrides{EndpointURL: endpoint}}, Deps{AWS: cfg})
	require.NoError(t, err)
	defer d.Close(ctx)
	f := testFailure(3)
	require.NoError(t, d.Send(ctx, f))

	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	require.Len(t, list.Contents, 1)
	key := *list.Contents[0].Key
	assert.Regexp(t, `^poller/aws/lambda/congrats/shardId-00000001573689847184-864758bb/2019/11/14/2019-11-14T00\.13\.49-[0-9a-f-]{36}$`, key)
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer obj.Body.Close()
	body, err := io.ReadAll(obj.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json", aws.ToString(obj.ContentType))
	checkDocumentedFields(t, body, f, true)
}

func TestAWSDestinationErrorsNameTheTarget(t *testing.T) {
	cfg, endpoint := motoAWS(t)
	ctx := context.Background()
	d, err := NewSQS(SQSConfig{QueueURL: endpoint + "/123456789012/no-such-queue", AWSOverrides: AWSOverrides{EndpointURL: endpoint}}, Deps{AWS: cfg})
	require.NoError(t, err)
	err = d.Send(ctx, testFailure(1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-queue")
	assert.Contains(t, err.Error(), "shardId-00000001573689847184-864758bb")
}

func TestFileDestination(t *testing.T) {
	ctx := context.Background()
	t.Run("reports are appended one per line, with the payload", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "failed.jsonl")
		d, err := Registry.New("file", &FileConfig{Path: path}, Deps{})
		require.NoError(t, err)
		f1, f2 := testFailure(1), testFailure(3)
		require.NoError(t, d.Send(ctx, f1))
		require.NoError(t, d.Send(ctx, f2))
		require.NoError(t, d.Close(ctx))
		require.NoError(t, d.Close(ctx), "a second Close does nothing")
		require.ErrorContains(t, d.Send(ctx, f1), "destination closed")

		file, err := os.Open(path)
		require.NoError(t, err)
		defer file.Close()
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		var lines [][]byte
		for sc.Scan() {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
		require.NoError(t, sc.Err())
		require.Len(t, lines, 2)
		checkDocumentedFields(t, lines[0], f1, true)
		checkDocumentedFields(t, lines[1], f2, true)
	})
	t.Run("a missing folder is an error at New naming the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope", "failed.jsonl")
		_, err := Registry.New("file", &FileConfig{Path: path}, Deps{})
		require.ErrorContains(t, err, path)
	})
	t.Run("a write error names the file", func(t *testing.T) {
		d, err := NewFile(FileConfig{Path: "/dev/full"}, Deps{})
		if err != nil {
			t.Fatalf("open /dev/full (every Linux has it): %v", err)
		}
		defer d.Close(ctx)
		require.ErrorContains(t, d.Send(ctx, testFailure(1)), "append to /dev/full")
	})
}

func TestRegistry(t *testing.T) {
	t.Run("the built-in destinations are registered", func(t *testing.T) {
		assert.Equal(t, []string{"file", "s3", "sns", "sqs"}, Registry.Types())
		assert.Len(t, Registry.ConfigTypes(), 4)
	})
	t.Run("registering a type twice panics", func(t *testing.T) {
		assert.PanicsWithValue(t, `onfailure: type "file" registered twice`, func() {
			Register("file", nil, func(*FileConfig, Deps) (Destination, error) { return nil, nil })
		})
	})
	t.Run("an unknown type is an error that lists the known types", func(t *testing.T) {
		_, err := Registry.New("kafka", nil, Deps{})
		require.ErrorContains(t, err, `unknown on_failure type "kafka" (known: file, s3, sns, sqs)`)
	})
	t.Run("a config of another type is rejected", func(t *testing.T) {
		_, err := Registry.New("sqs", &SNSConfig{}, Deps{})
		require.ErrorContains(t, err, "want *onfailure.SQSConfig")
	})
	t.Run("New validates the config and passes on the *ConfigError", func(t *testing.T) {
		_, err := Registry.New("s3", &S3Config{Bucket: "Bad_Bucket"}, Deps{})
		var ce *plugin.ConfigError
		require.True(t, errors.As(err, &ce), "New() error = %v", err)
		assert.Equal(t, "bucket", ce.Key)
	})
}

func TestConfigDecodingAndValidate(t *testing.T) {
	tests := []struct {
		name     string
		typ, doc string
		want     any      // the decoded config, when valid
		wantKeys []string // keys of the *ConfigErrors
	}{
		{"a file path decodes", "file", "path: /var/lib/poller/failed.jsonl", &FileConfig{Path: "/var/lib/poller/failed.jsonl"}, nil},
		{"a file path is required", "file", "{}", nil, []string{"path"}},
		{"an sqs queue with an endpoint decodes", "sqs", "queue_url: https://sqs.us-east-1.amazonaws.com/1/q\nendpoint_url: http://127.0.0.1:5000\nregion: eu-west-1",
			&SQSConfig{QueueURL: "https://sqs.us-east-1.amazonaws.com/1/q", AWSOverrides: AWSOverrides{Region: "eu-west-1", EndpointURL: "http://127.0.0.1:5000"}}, nil},
		{"an sqs queue_url is required", "sqs", "region: x", nil, []string{"queue_url"}},
		{"an sqs queue name is not a URL", "sqs", "queue_url: failed", nil, []string{"queue_url"}},
		{"a bad endpoint_url is named", "sqs", "queue_url: https://h/1/q\nendpoint_url: localhost:5000", nil, []string{"endpoint_url"}},
		{"an sns topic ARN decodes", "sns", "topic_arn: arn:aws:sns:us-east-1:123456789012:failed",
			&SNSConfig{TopicARN: "arn:aws:sns:us-east-1:123456789012:failed"}, nil},
		{"an sns topic_arn is required", "sns", "{}", nil, []string{"topic_arn"}},
		{"an sqs ARN is not a topic ARN", "sns", "topic_arn: arn:aws:sqs:us-east-1:123456789012:failed", nil, []string{"topic_arn"}},
		{"an s3 bucket with a prefix decodes", "s3", "bucket: failed-batches\nprefix: poller/\nforce_path_style: true",
			&S3Config{Bucket: "failed-batches", Prefix: "poller/", ForcePathStyle: true}, nil},
		{"every wrong s3 key is reported", "s3", "endpoint_url: ftp://x\nprefix: " + strings.Repeat("p", 513), nil, []string{"bucket", "prefix", "endpoint_url"}},
		{"an s3 bucket name with capitals is invalid", "s3", "bucket: Failed", nil, []string{"bucket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Registry.ConfigTypes()[tt.typ]()
			dec := yaml.NewDecoder(strings.NewReader(tt.doc))
			dec.KnownFields(true)
			require.NoError(t, dec.Decode(cfg))
			err := cfg.(plugin.Validator).Validate()
			if tt.wantKeys == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			var keys []string
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *plugin.ConfigError
				require.True(t, errors.As(e, &ce), "Validate() error %v is not a *ConfigError", e)
				keys = append(keys, ce.ConfigKey())
			}
			assert.Equal(t, tt.wantKeys, keys)
		})
	}
	t.Run("an unknown key is rejected by the strict decoder", func(t *testing.T) {
		dec := yaml.NewDecoder(strings.NewReader("bucket: b\nkey_prefix: x"))
		dec.KnownFields(true)
		require.ErrorContains(t, dec.Decode(&S3Config{}), "field key_prefix not found")
	})
}
