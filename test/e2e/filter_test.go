package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
)

// Only the records the filters select arrive, and the checkpoint still moves past the last record
// of the stream, although that record was filtered out.
func TestFiltersDeliverOnlySelectedRecordsAndCheckpointPastTheRest(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table := fmt.Sprintf("GameScores%d", time.Now().UnixNano())
	createTable(t, db, table)
	ctx := context.Background()
	put := func(pk string, score int) {
		t.Helper()
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "TopScore": &types.AttributeValueMemberN{Value: fmt.Sprint(score)},
		}})
		if err != nil {
			t.Fatalf("put %s: %v", pk, err)
		}
	}
	del := func(pk string) {
		t.Helper()
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
		if err != nil {
			t.Fatalf("delete %s: %v", pk, err)
		}
	}
	// Selected: a MODIFY whose new TopScore is above 1000 (numeric on a DynamoDB number, poller's
	// extension), or the REMOVE of a vip- item.
	put("alice", 10)     // INSERT: no
	put("vip-bob", 5000) // INSERT: no (not a MODIFY)
	put("alice", 900)    // MODIFY to 900: no
	put("alice", 1500)   // MODIFY to 1500: yes
	put("vip-bob", 99)   // MODIFY to 99: no
	put("carol", 1)      // INSERT: no
	put("carol", 100000) // MODIFY to 100000: yes (numeric, not string, comparison)
	del("vip-bob")       // REMOVE vip-: yes
	del("alice")         // REMOVE: no
	del("carol")         // REMOVE: no; the last record of the stream

	s := newSink(t)
	cfg := pipelineConfig{Endpoint: endpoint, Table: table, SinkURL: s.srv.URL, Extra: `    filters:
      - pattern: '{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 1000]}]}}}}'
      - pattern:
          eventName: [REMOVE]
          dynamodb:
            Keys:
              pk:
                S: [{prefix: "vip-"}]
`}.yaml(t)
	cfg = strings.Replace(cfg, "name: e2e", "name: "+table, 1)
	p := startPoller(t, cfg)

	lastSeq := lastSequenceNumber(t, endpoint, table)
	store := checkpoint.New(db, "poller-leases")
	waitFor(t, "the checkpoint to reach the stream's last record", time.Minute, func() bool {
		leases, _, err := store.List(ctx, table)
		if err != nil || len(leases) != 1 {
			return false
		}
		return leases[0].Checkpoint == lastSeq
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d, want 0", code)
	}

	var got []string
	for _, r := range s.snapshot() {
		got = append(got, r.Key)
	}
	sort.Strings(got)
	want := []string{"alice", "carol", "vip-bob"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered keys = %v, want %v (one record each)", got, want)
	}
}

// lastSequenceNumber reads the table's stream to its current end and returns the last record's
// sequence number.
func lastSequenceNumber(t *testing.T, endpoint, table string) string {
	t.Helper()
	ctx := context.Background()
	db := dynamo(endpoint)
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	streams := dynamodbstreams.NewFromConfig(testenv.AWSConfig(), func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
	arn := desc.Table.LatestStreamArn
	ds, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, sh := range ds.StreamDescription.Shards {
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn, ShardId: sh.ShardId, ShardIteratorType: "TRIM_HORIZON"})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				last = aws.ToString(r.Dynamodb.SequenceNumber)
			}
			if len(out.Records) == 0 {
				break // caught up with an open shard
			}
			iter = out.NextShardIterator
		}
	}
	if last == "" {
		t.Fatal("the stream has no records")
	}
	return last
}
