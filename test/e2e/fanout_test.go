package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/onfailure"
)

// The fan-out sinks end to end: the real poller binary reads DynamoDB Local and sends to moto's
// SQS, SNS, Kinesis, Firehose, EventBridge and S3; each test reads back what the service holds.

const (
	fanoutKeys     = 4       // partition keys k0..k3
	fanoutVersions = 5       // records per key: its item written 5 times, n rising
	bigRecordPad   = 300_000 // an item whose record is over 256 KiB (SQS, SNS, EventBridge)
)

// fanoutRecord is one record as a service gave it back.
type fanoutRecord struct {
	EventID, Key string
	N            int
}

func parseRecord(t *testing.T, raw []byte) fanoutRecord {
	t.Helper()
	var r events.DynamoDBEventRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("message is not a record's JSON: %v: %.200s", err, raw)
	}
	n, _ := strconv.Atoi(r.Change.NewImage["n"].Number())
	return fanoutRecord{EventID: r.EventID, Key: r.Change.Keys["pk"].String(), N: n}
}

// writeFanoutItems writes fanoutKeys x fanoutVersions records (item k<i%4> with n = i), with, when
// big, an item "big" of bigRecordPad bytes written after the first half.
func writeFanoutItems(t *testing.T, db *dynamodb.Client, table string, big bool) {
	t.Helper()
	put := func(item map[string]ddbtypes.AttributeValue) {
		if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatalf("put item: %v", err)
		}
	}
	total := fanoutKeys * fanoutVersions
	for i := range total {
		if big && i == total/2 {
			put(map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "big"},
				"n": &ddbtypes.AttributeValueMemberN{Value: "-1"}, "pad": &ddbtypes.AttributeValueMemberS{Value: strings.Repeat("x", bigRecordPad)}})
		}
		put(map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("k%d", i%fanoutKeys)},
			"n": &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(i)}})
	}
}

// fanoutConfig is a one-pipeline config reading table into the sink (its keys, indented by 6
// spaces), with a file on_failure destination at reports.
func fanoutConfig(t *testing.T, endpoint, table, sinkKeys, reports string) string {
	return fanoutConfigOn(freePort(t), endpoint, table, sinkKeys, reports, "")
}

// fanoutConfigOn is fanoutConfig with /metrics on port and more pipeline keys (4 spaces in).
func fanoutConfigOn(port int, endpoint, table, sinkKeys, reports, extra string) string {
	return fmt.Sprintf(`aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: poller-leases
  lease_duration: 3s
  renew_interval: 500ms
server:
  listen: 127.0.0.1:%d
log:
  level: debug
pipelines:
  - name: %s
    source:
      table: %s
    batch_size: 100
    max_batching_window: 1s
%s    on_failure:
      type: file
      path: %s
    sink:
%s`, endpoint, port, table, table, extra, reports, sinkKeys)
}

// readReports reads the on_failure file's records.
func readReports(t *testing.T, path string) []onfailure.Record {
	r := &failureRun{reportsPath: path}
	return r.reports(t)
}

// fanoutCase is one sink: make its resources in moto, give its sink keys, read back its records.
type fanoutCase struct {
	name string
	// setup makes the sink's resources and returns its keys (6 spaces in) and how to read what
	// arrived so far (called repeatedly, it returns everything read until then).
	setup func(t *testing.T, moto, name string) (sinkKeys string, read func(t *testing.T) []fanoutRecord)
	// big: write a record over the service's 256 KiB limit, which must go to on_failure.
	big bool
	// ordered: the service keeps one partition key's records in order, which is asserted.
	ordered bool
}

// TestFanoutSinks: for each sink every record arrives once; for SQS FIFO and Kinesis one partition
// key's records arrive in order; a record over the service's size limit goes to on_failure with
// the reason (RecordTooLarge) and the rest is delivered.
func TestFanoutSinks(t *testing.T) {
	moto := testenv.Moto(t)
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	for _, tc := range fanoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			name := unique(strings.ReplaceAll(tc.name, " ", "-"))
			sinkKeys, read := tc.setup(t, moto, name)
			createTable(t, db, name)
			writeFanoutItems(t, db, name, tc.big)
			reports := t.TempDir() + "/on_failure.jsonl"
			p := startPoller(t, fanoutConfig(t, endpoint, name, sinkKeys, reports))
			want := fanoutKeys * fanoutVersions
			var got []fanoutRecord
			waitFor(t, fmt.Sprintf("%d records in %s", want, tc.name), 90*time.Second, func() bool {
				got = read(t)
				return len(got) >= want
			})
			if tc.big {
				waitFor(t, "the record over the limit in on_failure", 30*time.Second, func() bool { return len(readReports(t, reports)) > 0 })
			}
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("poller exited with %d after SIGTERM, want 0", code)
			}
			got = read(t) // anything sent twice is in by now
			if tc.big {
				checkTooLargeReport(t, readReports(t, reports))
			}
			checkFanoutOnce(t, got, want)
			if tc.ordered {
				checkKeyOrder(t, got)
			}
		})
	}
}

// checkFanoutOnce fails unless got holds want distinct records, each once, and not the big one.
func checkFanoutOnce(t *testing.T, got []fanoutRecord, want int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[r.EventID]++
		if r.Key == "big" {
			t.Errorf("the record over the limit was delivered")
		}
	}
	if len(seen) != want || len(got) != want {
		t.Errorf("got %d records, %d distinct, want %d once each", len(got), len(seen), want)
	}
}

// checkKeyOrder fails unless each key's records arrived in the order they were written (n rising).
func checkKeyOrder(t *testing.T, got []fanoutRecord) {
	t.Helper()
	last := map[string]int{}
	for _, r := range got {
		if prev, ok := last[r.Key]; ok && r.N <= prev {
			t.Errorf("record n=%d of %s arrived after n=%d: out of order", r.N, r.Key, prev)
		}
		last[r.Key] = r.N
	}
}

// checkTooLargeReport fails unless the on_failure reports hold exactly the big record, alone, as
// RecordTooLarge with the reason.
func checkTooLargeReport(t *testing.T, reps []onfailure.Record) {
	t.Helper()
	if len(reps) != 1 {
		t.Fatalf("on_failure got %d reports, want 1", len(reps))
	}
	r := reps[0]
	if r.DDBStreamBatchInfo.BatchSize != 1 || r.RequestContext.Condition != onfailure.RecordTooLarge {
		t.Errorf("report covers %d records as %s, want 1 as %s", r.DDBStreamBatchInfo.BatchSize, r.RequestContext.Condition, onfailure.RecordTooLarge)
	}
	if !strings.Contains(r.ResponseContext.ErrorMessage, "over the 262144 byte limit") {
		t.Errorf("report's errorMessage = %q, want the size limit as the reason", r.ResponseContext.ErrorMessage)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal([]byte(r.Payload), &ev); err != nil || len(ev.Records) != 1 || ev.Records[0].Change.Keys["pk"].String() != "big" {
		t.Errorf("report's payload = %.200s, want the big record (err %v)", r.Payload, err)
	}
}

// sqsClient is an SQS client of moto.
func sqsClient(moto string) *sqs.Client {
	return sqs.NewFromConfig(testenv.AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(moto) })
}

// createQueue makes a queue (FIFO when its name ends in .fifo) and returns its URL and ARN.
func createQueue(t *testing.T, c *sqs.Client, name string) (url, arn string) {
	t.Helper()
	in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if strings.HasSuffix(name, ".fifo") {
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := c.CreateQueue(context.Background(), in)
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	attrs, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("queue %s's ARN: %v", name, err)
	}
	return aws.ToString(out.QueueUrl), attrs.Attributes["QueueArn"]
}

// queueReader returns a reader of every message body the queue received, in order, each read once
// (received and deleted).
func queueReader(c *sqs.Client, url string) func(t *testing.T) [][]byte {
	return queueReaderChecking(c, url, nil)
}

// queueReaderChecking is queueReader that also hands each message, with its system attributes, to
// check (when not nil).
func queueReaderChecking(c *sqs.Client, url string, check func(t *testing.T, m sqstypes.Message)) func(t *testing.T) [][]byte {
	var bodies [][]byte
	return func(t *testing.T) [][]byte {
		t.Helper()
		for {
			out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
				MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: []string{"All"},
				MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
			if err != nil {
				t.Fatalf("receive from %s: %v", url, err)
			}
			if len(out.Messages) == 0 {
				return bodies
			}
			for _, m := range out.Messages {
				bodies = append(bodies, []byte(aws.ToString(m.Body)))
				if check != nil {
					check(t, m)
				}
				if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatalf("delete from %s: %v", url, err)
				}
			}
		}
	}
}
