package streamstest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/require"

	st "github.com/poller-dev/poller/internal/streamstest"
)

// TestRecordsOnTheWire checks the bytes a consumer receives, not just what the SDK makes of them:
// member names, a numeric ApproximateCreationDateTime, absent (not null) images.
func TestRecordsOnTheWire(t *testing.T) {
	e := newEnv(t, st.Options{Region: "eu-west-1"})
	s := e.srv.CreateStream("GameScores", st.NewAndOldImages, st.WithKeySchema("UserId"))
	sh := s.OpenShard("")
	key := st.Item{"UserId": st.S("u1")}
	seqs := s.Put(sh, st.TTLRemove(key, st.Item{"UserId": st.S("u1"), "TopScore": st.N(7)}))
	it := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")

	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srv.URL, bytes.NewReader([]byte(`{"ShardIterator":"`+it+`"}`)))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "DynamoDBStreams_20120810.GetRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/x-amz-json-1.0", resp.Header.Get("Content-Type"))
	require.NotEmpty(t, resp.Header.Get("X-Amz-Crc32"))

	var out struct {
		Records           []map[string]json.RawMessage
		NextShardIterator *string
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out.Records, 1)
	r := out.Records[0]
	require.JSONEq(t, `"REMOVE"`, string(r["eventName"]))
	require.JSONEq(t, `"1.1"`, string(r["eventVersion"]))
	require.JSONEq(t, `"aws:dynamodb"`, string(r["eventSource"]))
	require.JSONEq(t, `"eu-west-1"`, string(r["awsRegion"]))
	require.JSONEq(t, `{"PrincipalId":"dynamodb.amazonaws.com","Type":"Service"}`, string(r["userIdentity"]))
	require.Regexp(t, regexp.MustCompile(`^"[0-9a-f]{32}"$`), string(r["eventID"]))
	require.JSONEq(t, `{
		"ApproximateCreationDateTime": `+jsonNumber(t0.Unix())+`,
		"Keys": {"UserId": {"S": "u1"}},
		"OldImage": {"UserId": {"S": "u1"}, "TopScore": {"N": "7"}},
		"SequenceNumber": "`+seqs[0]+`",
		"SizeBytes": 26,
		"StreamViewType": "NEW_AND_OLD_IMAGES"
	}`, string(r["dynamodb"]))

	// Lambda's event types read the same record (less eventSourceARN, which the poller adds).
	var ev events.DynamoDBEventRecord
	require.NoError(t, json.Unmarshal(body[bytes.Index(body, []byte("["))+1:bytes.LastIndex(body, []byte("]"))], &ev))
	require.Equal(t, "Service", ev.UserIdentity.Type)
	require.Equal(t, t0, ev.Change.ApproximateCreationDateTime.Time.UTC())
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestRecordsThroughTheSDK(t *testing.T) {
	key := st.Item{"pk": st.S("k")}
	oldImg := st.Item{"pk": st.S("k"), "n": st.N(1)}
	newImg := st.Item{"pk": st.S("k"), "n": st.N(2), "b": st.B([]byte{0, 1, 2}), "ok": st.Bool(true), "none": st.Null(),
		"l": st.L(st.S("x"), st.N(1.5)), "m": st.M(st.Item{"inner": st.SS("a", "b")}), "ns": st.NS("1", "2")}
	tests := []struct {
		name             string
		view             types.StreamViewType
		rec              st.Record
		wantNew, wantOld bool
	}{
		{"a MODIFY on a NEW_AND_OLD_IMAGES stream carries both images", st.NewAndOldImages, st.Modify(key, oldImg, newImg), true, true},
		{"a MODIFY on a KEYS_ONLY stream carries only the keys", st.KeysOnly, st.Modify(key, oldImg, newImg), false, false},
		{"a MODIFY on a NEW_IMAGE stream carries the new image", st.NewImageOnly, st.Modify(key, oldImg, newImg), true, false},
		{"a MODIFY on an OLD_IMAGE stream carries the old image", st.OldImageOnly, st.Modify(key, oldImg, newImg), false, true},
		{"an INSERT carries no old image even if given one", st.NewAndOldImages, st.Record{EventName: types.OperationTypeInsert, Keys: key, NewImage: newImg, OldImage: oldImg}, true, false},
		{"a REMOVE carries no new image", st.NewAndOldImages, st.Remove(key, oldImg), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, st.Options{})
			s := e.srv.CreateStream("T", tc.view)
			sh := s.OpenShard("")
			e.clock.Advance(1500 * time.Millisecond)
			seqs := s.Put(sh, tc.rec)
			out, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, ""))})
			require.NoError(t, err)
			require.Len(t, out.Records, 1)
			r := out.Records[0]
			require.Equal(t, tc.rec.EventName, r.EventName)
			require.Nil(t, r.UserIdentity)
			require.Equal(t, seqs[0], aws.ToString(r.Dynamodb.SequenceNumber))
			require.Equal(t, tc.view, r.Dynamodb.StreamViewType)
			require.Equal(t, t0.Add(time.Second), r.Dynamodb.ApproximateCreationDateTime.UTC(), "rounded down to the second")
			require.Equal(t, key, r.Dynamodb.Keys)
			require.Positive(t, aws.ToInt64(r.Dynamodb.SizeBytes))
			if tc.wantNew {
				require.Equal(t, newImg, r.Dynamodb.NewImage)
			} else {
				require.Nil(t, r.Dynamodb.NewImage)
			}
			if tc.wantOld {
				require.Equal(t, oldImg, r.Dynamodb.OldImage)
			} else {
				require.Nil(t, r.Dynamodb.OldImage)
			}
		})
	}
}
