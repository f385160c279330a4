package sinks

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/internal/testenv"
)

// TestMain checks for leaked goroutines, and stops moto (the lambda sink's STS) at the end.
func TestMain(m *testing.M) {
	testenv.VerifyMain(m)
}

// testBatch returns a batch of n records whose sequence numbers are prefix-0, prefix-1, ...
func testBatch(prefix string, n int) Batch {
	b := Batch{Pipeline: "p", StreamARN: "arn:aws:dynamodb:us-east-1:1:table/T/stream/L", ShardID: "shardId-1"}
	for i := range n {
		seq := fmt.Sprintf("%s-%d", prefix, i)
		b.Records = append(b.Records, events.DynamoDBEventRecord{
			AWSRegion:      "us-east-1",
			EventID:        "id-" + seq,
			EventName:      "INSERT",
			EventSource:    "aws:dynamodb",
			EventVersion:   "1.1",
			EventSourceArn: b.StreamARN,
			Change: events.DynamoDBStreamRecord{
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1428537600, 0)},
				Keys:                        map[string]events.DynamoDBAttributeValue{"Id": events.NewStringAttribute(seq)},
				NewImage: map[string]events.DynamoDBAttributeValue{
					"Id":  events.NewStringAttribute(seq),
					"Bin": events.NewBinaryAttribute([]byte{1, 2, 3}),
					"L":   events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewNumberAttribute("1"), events.NewNullAttribute()}),
				},
				SequenceNumber: seq,
				SizeBytes:      42,
				StreamViewType: "NEW_AND_OLD_IMAGES",
			},
		})
	}
	return b
}
