package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/sinks"
)

// checkKeptJSON reports a batch whose kept JSON is missing (for a record up to keepJSONMax),
// present for a larger one, or differs from what encoding its records afresh gives
// (event.AppendJSON, and encoding/json, whose bytes those are). It returns how many were kept.
func checkKeptJSON(t *testing.T, b sinks.Batch) (kept int) {
	t.Helper()
	if !assert.Len(t, b.RecordJSON, len(b.Records), "a kept JSON entry for every record") {
		return 0
	}
	for i := range b.Records {
		fresh, err := event.AppendJSON(nil, &b.Records[i])
		require.NoError(t, err)
		if len(fresh) > keepJSONMax {
			assert.Nil(t, b.RecordJSON[i], "record %d of %d bytes: no JSON kept", i, len(fresh))
			continue
		}
		kept++
		assert.Equal(t, string(fresh), string(b.RecordJSON[i]), "record %d: kept JSON against a fresh encoding", i)
		marshaled, err := json.Marshal(b.Records[i])
		require.NoError(t, err)
		assert.Equal(t, string(marshaled), string(b.RecordJSON[i]), "record %d: kept JSON against json.Marshal", i)
	}
	return kept
}

// The dispatcher hands each batch the event JSON it encoded each record to once, to size the
// batch: exactly the bytes a fresh encoding gives, records with every attribute type, escapes and
// long values included, on several lanes; records over keepJSONMax keep none.
func TestDispatcherKeepsEachRecordsEventJSON(t *testing.T) {
	recs := make([]types.Record, 60)
	for i := range recs {
		recs[i] = rec(i, fmt.Sprintf("k<%d>&\"é\u2028", i%5), i*97)
		img := recs[i].Dynamodb.NewImage
		img["n"] = &types.AttributeValueMemberN{Value: fmt.Sprint(i, ".5")}
		img["b"] = &types.AttributeValueMemberB{Value: []byte{byte(i), 0, 255}}
		img["l"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberBOOL{Value: i%2 == 0}, &types.AttributeValueMemberNULL{Value: true},
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"z": &types.AttributeValueMemberSS{Value: []string{"a", "\x01"}}, "a": &types.AttributeValueMemberNS{Value: []string{"1"}}}},
			&types.AttributeValueMemberBS{Value: [][]byte{{1}, {}}},
		}}
	}
	r := &recorder{}
	d := newDispatcher(t, r)
	d.Lanes = 3
	var mu sync.Mutex
	var got []events.DynamoDBEventRecord
	kept := 0
	d.Deliver = func(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error {
		n := checkKeptJSON(t, b)
		mu.Lock()
		kept += n
		got = append(got, b.Records...)
		mu.Unlock()
		return r.deliver(ctx, stop, b)
	}
	require.NoError(t, d.Run(context.Background(), nil, pagesOf(recs, 7, true)))
	assert.Len(t, got, len(recs))
	assert.Greater(t, kept, 30, "records up to keepJSONMax keep their JSON")
	assert.Less(t, kept, 60, "larger ones do not")
}
