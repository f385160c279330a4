package onfailure

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/goleak"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/sinks"
)

// testTransport carries every AWS request of the tests, so that its idle connections can be closed
// before goleak looks for leftover goroutines.
var testTransport = http.DefaultTransport.(*http.Transport).Clone()

func TestMain(m *testing.M) {
	code := testenv.Main(m) // runs the tests, then stops moto
	testTransport.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testBatch returns a batch of n records with sequence numbers 800000000003126276362 + i, created
// one second apart from 2019-11-14T00:13:19Z.
func testBatch(n int) sinks.Batch {
	b := sinks.Batch{
		Pipeline:  "congrats",
		StreamARN: "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388",
		ShardID:   "shardId-00000001573689847184-864758bb",
	}
	for i := range n {
		seq := fmt.Sprintf("8000000000031262763%02d", 62+i)
		b.Records = append(b.Records, events.DynamoDBEventRecord{
			AWSRegion: "us-east-2", EventID: "e" + seq, EventName: "INSERT", EventSource: "aws:dynamodb",
			EventVersion: "1.1", EventSourceArn: b.StreamARN,
			Change: events.DynamoDBStreamRecord{
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(time.Date(2019, 11, 14, 0, 13, 19+i, 0, time.UTC).Unix(), 0)},
				Keys:                        map[string]events.DynamoDBAttributeValue{"Id": events.NewNumberAttribute(seq)},
				NewImage:                    map[string]events.DynamoDBAttributeValue{"Id": events.NewNumberAttribute(seq), "Msg": events.NewStringAttribute("héllo")},
				SequenceNumber:              seq,
				SizeBytes:                   26,
				StreamViewType:              "NEW_AND_OLD_IMAGES",
			},
		})
	}
	return b
}
