package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	firehosetypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/poller-dev/poller/internal/testenv"
)

// fanoutCases are the sinks TestFanoutSinks runs, each with its way of reading back from moto.
func fanoutCases() []fanoutCase {
	return []fanoutCase{
		{name: "sqs", big: true, setup: setupSQS(false)},
		{name: "sqs fifo", ordered: true, setup: setupSQS(true)},
		{name: "sns", big: true, setup: setupSNS(false)},
		{name: "sns fifo", ordered: true, setup: setupSNS(true)},
		{name: "kinesis", ordered: true, setup: setupKinesis},
		{name: "firehose", setup: setupFirehose},
		{name: "eventbridge", big: true, setup: setupEventBridge},
		{name: "s3", setup: setupS3},
	}
}

func ctx() context.Context { return context.Background() }

func setupSQS(fifo bool) func(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	return func(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
		c := sqsClient(moto)
		if fifo {
			name += ".fifo"
		}
		url, _ := createQueue(t, c, name)
		var check func(t *testing.T, m sqstypes.Message)
		if fifo { // the group is the partition key value, the deduplication id the eventID
			check = func(t *testing.T, m sqstypes.Message) {
				r := parseRecord(t, []byte(aws.ToString(m.Body)))
				group := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
				dedup := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageDeduplicationId)]
				if group != r.Key || dedup != r.EventID {
					t.Errorf("message of %s %s has MessageGroupId %q, MessageDeduplicationId %q", r.Key, r.EventID, group, dedup)
				}
			}
		}
		read := queueReaderChecking(c, url, check)
		keys := fmt.Sprintf("      type: sqs\n      queue_url: %s\n      endpoint_url: %s\n", url, moto)
		return keys, func(t *testing.T) []fanoutRecord {
			var out []fanoutRecord
			for _, b := range read(t) {
				out = append(out, parseRecord(t, b))
			}
			return out
		}
	}
}

// setupSNS subscribes a queue to the topic (FIFO both, when fifo) and reads the records from the
// SNS envelopes in it; each must carry the eventName attribute.
func setupSNS(fifo bool) func(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	return func(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
		in := &sns.CreateTopicInput{Name: aws.String(name)}
		if fifo {
			name += ".fifo"
			in = &sns.CreateTopicInput{Name: aws.String(name), Attributes: map[string]string{"FifoTopic": "true"}}
		}
		return setupSNSTopic(t, moto, name, in)
	}
}

func setupSNSTopic(t *testing.T, moto, name string, in *sns.CreateTopicInput) (string, func(t *testing.T) []fanoutRecord) {
	c := sns.NewFromConfig(testenv.AWSConfig(), func(o *sns.Options) { o.BaseEndpoint = aws.String(moto) })
	topic, err := c.CreateTopic(ctx(), in)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	q := sqsClient(moto)
	url, arn := createQueue(t, q, name)
	if _, err := c.Subscribe(ctx(), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn)}); err != nil {
		t.Fatalf("subscribe queue: %v", err)
	}
	read := queueReader(q, url)
	keys := fmt.Sprintf("      type: sns\n      topic_arn: %s\n      endpoint_url: %s\n", aws.ToString(topic.TopicArn), moto)
	return keys, func(t *testing.T) []fanoutRecord {
		var out []fanoutRecord
		for _, b := range read(t) {
			var env struct {
				Message           string
				MessageAttributes map[string]struct{ Value string }
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("SNS envelope: %v: %.200s", err, b)
			}
			if env.MessageAttributes["eventName"].Value != "INSERT" && env.MessageAttributes["eventName"].Value != "MODIFY" {
				t.Errorf("message attribute eventName = %q, want the record's eventName", env.MessageAttributes["eventName"].Value)
			}
			out = append(out, parseRecord(t, []byte(env.Message)))
		}
		return out
	}
}

// setupKinesis reads the one-shard stream from TRIM_HORIZON on.
func setupKinesis(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	c := kinesis.NewFromConfig(testenv.AWSConfig(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(moto) })
	if _, err := c.CreateStream(ctx(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	shards, err := c.ListShards(ctx(), &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil || len(shards.Shards) != 1 {
		t.Fatalf("list shards: %v (%d shards)", err, len(shards.Shards))
	}
	it, err := c.GetShardIterator(ctx(), &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: shards.Shards[0].ShardId,
		ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("shard iterator: %v", err)
	}
	iter := it.ShardIterator
	var out []fanoutRecord
	keys := fmt.Sprintf("      type: kinesis\n      stream_name: %s\n      endpoint_url: %s\n", name, moto)
	return keys, func(t *testing.T) []fanoutRecord {
		for {
			page, err := c.GetRecords(ctx(), &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("get records: %v", err)
			}
			iter = page.NextShardIterator
			for _, r := range page.Records {
				rec := parseRecord(t, r.Data)
				if aws.ToString(r.PartitionKey) != rec.Key {
					t.Errorf("record of %s has PartitionKey %q, want the partition key value", rec.Key, aws.ToString(r.PartitionKey))
				}
				out = append(out, rec)
			}
			if len(page.Records) == 0 {
				return out
			}
		}
	}
}

// setupFirehose delivers to a bucket, whose objects are read as JSON Lines.
func setupFirehose(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	bucket := createBucket(t, moto, name)
	c := firehose.NewFromConfig(testenv.AWSConfig(), func(o *firehose.Options) { o.BaseEndpoint = aws.String(moto) })
	if _, err := c.CreateDeliveryStream(ctx(), &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String(name),
		DeliveryStreamType: firehosetypes.DeliveryStreamTypeDirectPut,
		ExtendedS3DestinationConfiguration: &firehosetypes.ExtendedS3DestinationConfiguration{
			BucketARN: aws.String("arn:aws:s3:::" + bucket), RoleARN: aws.String("arn:aws:iam::123456789012:role/firehose")}}); err != nil {
		t.Fatalf("create delivery stream: %v", err)
	}
	keys := fmt.Sprintf("      type: firehose\n      delivery_stream: %s\n      endpoint_url: %s\n", name, moto)
	return keys, func(t *testing.T) []fanoutRecord {
		var out []fanoutRecord
		for _, body := range objects(t, moto, bucket, "") {
			sc := bufio.NewScanner(strings.NewReader(string(body)))
			sc.Buffer(nil, 8<<20)
			for sc.Scan() {
				out = append(out, parseRecord(t, sc.Bytes()))
			}
		}
		return out
	}
}

// setupEventBridge routes the sink's source on the default bus to a queue, and reads each event's
// detail.
func setupEventBridge(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	c := eventbridge.NewFromConfig(testenv.AWSConfig(), func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(moto) })
	q := sqsClient(moto)
	url, arn := createQueue(t, q, name)
	if _, err := c.PutRule(ctx(), &eventbridge.PutRuleInput{Name: aws.String(name),
		EventPattern: aws.String(fmt.Sprintf(`{"source":[%q]}`, name))}); err != nil {
		t.Fatalf("put rule: %v", err)
	}
	if _, err := c.PutTargets(ctx(), &eventbridge.PutTargetsInput{Rule: aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(arn)}}}); err != nil {
		t.Fatalf("put targets: %v", err)
	}
	read := queueReader(q, url)
	keys := fmt.Sprintf("      type: eventbridge\n      source: %s\n      endpoint_url: %s\n", name, moto)
	return keys, func(t *testing.T) []fanoutRecord {
		var out []fanoutRecord
		for _, b := range read(t) {
			var ev struct {
				DetailType string          `json:"detail-type"`
				Detail     json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatalf("event: %v: %.200s", err, b)
			}
			if ev.DetailType != "DynamoDB Stream Record" {
				t.Errorf("detail-type = %q, want the default", ev.DetailType)
			}
			out = append(out, parseRecord(t, ev.Detail))
		}
		return out
	}
}

// s3KeyPattern is the s3 sink's key: PREFIX/PIPELINE/YYYY/MM/DD/HH/SHARD-FIRSTSEQ-LASTSEQ.json.
var s3KeyPattern = regexp.MustCompile(`^audit/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/shardId-[^/]+-\d+-\d+\.json$`)

// setupS3 reads the events of every object under the prefix; their keys must follow the layout.
func setupS3(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord) {
	bucket := createBucket(t, moto, name)
	keys := fmt.Sprintf("      type: s3\n      bucket: %s\n      prefix: audit\n      force_path_style: true\n      endpoint_url: %s\n", bucket, moto)
	return keys, func(t *testing.T) []fanoutRecord {
		var out []fanoutRecord
		for key, body := range objects(t, moto, bucket, "audit/") {
			if !s3KeyPattern.MatchString(key) {
				t.Errorf("object key %q does not follow PREFIX/PIPELINE/YYYY/MM/DD/HH/SHARD-FIRSTSEQ-LASTSEQ.json", key)
			}
			var ev events.DynamoDBEvent
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatalf("object %s is not a Lambda event: %v", key, err)
			}
			for _, r := range ev.Records {
				raw, _ := json.Marshal(r)
				out = append(out, parseRecord(t, raw))
			}
		}
		return out
	}
}

func s3Client(moto string) *s3.Client {
	return s3.NewFromConfig(testenv.AWSConfig(), func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(moto), true })
}

func createBucket(t *testing.T, moto, name string) string {
	t.Helper()
	bucket := regexp.MustCompile(`[^a-z0-9-]`).ReplaceAllString(name, "-")
	if _, err := s3Client(moto).CreateBucket(ctx(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return bucket
}

// objects returns the bodies of the bucket's objects under prefix, by key, in key order.
func objects(t *testing.T, moto, bucket, prefix string) map[string][]byte {
	t.Helper()
	c := s3Client(moto)
	list, err := c.ListObjectsV2(ctx(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list objects: %v", err)
	}
	keys := make([]string, 0, len(list.Contents))
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	sort.Strings(keys)
	out := map[string][]byte{}
	for _, k := range keys {
		obj, err := c.GetObject(ctx(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("get object %s: %v", k, err)
		}
		body, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = body
	}
	return out
}
