package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sameAsMarshal checks that AppendJSON writes exactly the bytes json.Marshal writes.
func sameAsMarshal(t *testing.T, r events.DynamoDBEventRecord) {
	t.Helper()
	want, err := json.Marshal(r)
	require.NoError(t, err)
	prefix := []byte("prefix:")
	got, err := AppendJSON(prefix, &r)
	require.NoError(t, err)
	require.Equal(t, string(want), strings.TrimPrefix(string(got), "prefix:"), "AppendJSON() after a prefix")
	assert.True(t, bytes.HasPrefix(got, prefix), "AppendJSON() keeps what dst held")
}

func TestAppendJSONWritesWhatJSONMarshalWrites(t *testing.T) {
	base := func() events.DynamoDBEventRecord {
		return events.DynamoDBEventRecord{
			AWSRegion: "us-east-1", EventID: "id", EventName: "MODIFY", EventSource: "aws:dynamodb",
			EventVersion: "1.1", EventSourceArn: testStreamARN,
			Change: events.DynamoDBStreamRecord{
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1428537600, 0)},
				Keys:                        map[string]events.DynamoDBAttributeValue{"Id": events.NewNumberAttribute("1")},
				SequenceNumber:              "111", SizeBytes: 26, StreamViewType: "KEYS_ONLY",
			},
		}
	}
	tests := []struct {
		name   string
		change func(r *events.DynamoDBEventRecord)
	}{
		{"a keys-only record", func(*events.DynamoDBEventRecord) {}},
		{"a TTL delete with userIdentity and an old image", func(r *events.DynamoDBEventRecord) {
			r.UserIdentity = &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}
			r.Change.OldImage = map[string]events.DynamoDBAttributeValue{"b": events.NewBooleanAttribute(false), "a": events.NewNullAttribute()}
		}},
		{"nil lists, sets, binaries and maps, which FromStreams never makes, are null", func(r *events.DynamoDBEventRecord) {
			r.Change.NewImage = map[string]events.DynamoDBAttributeValue{
				"l": events.NewListAttribute(nil), "ss": events.NewStringSetAttribute(nil), "ns": events.NewNumberSetAttribute(nil),
				"bs": events.NewBinarySetAttribute(nil), "b": events.NewBinaryAttribute([]byte{}), "m": events.NewMapAttribute(nil),
				"bs2": events.NewBinarySetAttribute([][]byte{nil, {}, {0xff}}),
			}
		}},
		{"a fractional, a negative and a zero creation time", func(r *events.DynamoDBEventRecord) {
			r.Change.ApproximateCreationDateTime.Time = time.Unix(1428537600, 123456789)
			r.Change.OldImage = map[string]events.DynamoDBAttributeValue{"x": events.NewStringAttribute("x")}
		}},
		{"a negative creation time", func(r *events.DynamoDBEventRecord) {
			r.Change.ApproximateCreationDateTime.Time = time.Unix(-5, 5)
		}},
		{"a zero creation time", func(r *events.DynamoDBEventRecord) { r.Change.ApproximateCreationDateTime.Time = time.Time{} }},
		{"a tiny creation time is written with an exponent", func(r *events.DynamoDBEventRecord) {
			r.Change.ApproximateCreationDateTime.Time = time.Unix(0, 5)
		}},
		{"strings that need escaping, in values and keys", func(r *events.DynamoDBEventRecord) {
			odd := "<a href=\"x\">&amp;</a>\\\b\f\n\r\t\x00\x1f\x7f\u2028\u2029é日😀\xff\xfe ok"
			r.EventID = odd
			r.Change.NewImage = map[string]events.DynamoDBAttributeValue{odd: events.NewStringAttribute(odd),
				"ss": events.NewStringSetAttribute([]string{odd, ""})}
		}},
		{"empty keys are left out", func(r *events.DynamoDBEventRecord) { r.Change.Keys = map[string]events.DynamoDBAttributeValue{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.change(&r)
			sameAsMarshal(t, r)
		})
	}
}

func TestAppendJSONNamesAnEmptyValue(t *testing.T) {
	r := events.DynamoDBEventRecord{EventID: "e1", Change: events.DynamoDBStreamRecord{
		NewImage: map[string]events.DynamoDBAttributeValue{"a": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{
			"l": events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewStringAttribute("x"), {}}),
		})},
	}}
	_, err := AppendJSON(nil, &r)
	var ae *AttributeError
	require.True(t, errors.As(err, &ae), "AppendJSON() error = %v, want an *AttributeError", err)
	assert.Equal(t, "dynamodb.NewImage.a.l[1]", ae.Path)
	assert.Contains(t, err.Error(), "record e1")
}

// FuzzAppendString checks string escaping against encoding/json on any bytes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&\"\\", "\u2028\u2029", "\xff\xfe\xfd", "\x00\x01\b\f\n\r\t\x1f\x7f", "é日😀", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendStringRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		want, err := json.Marshal(string(b))
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, string(b))), "appendString(%q)", b)
	}
}

// BenchmarkRecordJSON compares json.Marshal and AppendJSON on a typical record (a key, five
// attributes of mixed types in the new image).
func BenchmarkRecordJSON(b *testing.B) {
	r, err := FromStreams(record(&types.AttributeValueMemberS{Value: "x"}), testStreamARN)
	require.NoError(b, err)
	r.Change.NewImage = map[string]events.DynamoDBAttributeValue{
		"Id": events.NewNumberAttribute("101"), "Message": events.NewStringAttribute("New item!"),
		"Tags": events.NewStringSetAttribute([]string{"a", "b"}), "Bin": events.NewBinaryAttribute([]byte("0123456789")),
		"Nested": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{"L": events.NewListAttribute(
			[]events.DynamoDBAttributeValue{events.NewNumberAttribute("1"), events.NewNullAttribute(), events.NewBooleanAttribute(true)})}),
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = AppendJSON(buf[:0], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAppendEventWritesWhatJSONMarshalWrites(t *testing.T) {
	var recs []events.DynamoDBEventRecord
	for i := range 3 {
		r, err := FromStreams(record(&types.AttributeValueMemberN{Value: strconv.Itoa(i)}), testStreamARN)
		require.NoError(t, err)
		recs = append(recs, r)
	}
	for n := 1; n <= 3; n++ {
		want, err := json.Marshal(events.DynamoDBEvent{Records: recs[:n]})
		require.NoError(t, err)
		got, err := AppendEvent(nil, recs[:n])
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "AppendEvent() of %d records", n)
	}
	got, err := AppendEvent(nil, nil)
	require.NoError(t, err)
	assert.Equal(t, `{"Records":[]}`, string(got), "no records are an empty list, not null")
}

// BenchmarkFromStreams converts a record like the drain benchmark's (a key and a 60-byte payload,
// new and old images of an insert): what the dispatcher does to every record read, besides
// AppendJSON.
func BenchmarkFromStreams(b *testing.B) {
	r := record(&types.AttributeValueMemberS{Value: strings.Repeat("x", 60)})
	r.Dynamodb.Keys = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "item-000042"}}
	r.Dynamodb.NewImage["pk"] = r.Dynamodb.Keys["pk"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromStreams(r, testStreamARN); err != nil {
			b.Fatal(err)
		}
	}
}
