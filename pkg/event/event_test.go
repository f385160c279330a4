package event

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testStreamARN = "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTable/stream/2015-06-27T00:48:05.899"

// record wraps one NewImage attribute "v" in an otherwise ordinary INSERT record.
func record(v types.AttributeValue) types.Record {
	return types.Record{
		EventID:   aws.String("1"),
		EventName: types.OperationTypeInsert,
		Dynamodb: &types.StreamRecord{
			ApproximateCreationDateTime: aws.Time(time.Unix(1428537600, 0)),
			Keys:                        map[string]types.AttributeValue{"Id": &types.AttributeValueMemberN{Value: "101"}},
			NewImage:                    map[string]types.AttributeValue{"v": v},
			SequenceNumber:              aws.String("111"),
			SizeBytes:                   aws.Int64(26),
			StreamViewType:              types.StreamViewTypeNewImage,
		},
	}
}

func TestFromStreamsAttributeTypes(t *testing.T) {
	tests := []struct {
		name string
		in   types.AttributeValue
		want string // the JSON of NewImage.v
	}{
		{"a string stays a string", &types.AttributeValueMemberS{Value: "héllo \"x\""}, `{"S":"héllo \"x\""}`},
		{"an empty string stays an empty string", &types.AttributeValueMemberS{Value: ""}, `{"S":""}`},
		{"a number keeps its exact decimal text", &types.AttributeValueMemberN{Value: "-12.500E+3"}, `{"N":"-12.500E+3"}`},
		{"binary becomes standard base64", &types.AttributeValueMemberB{Value: []byte{0, 1, 0xfe, 0xff}}, `{"B":"AAH+/w=="}`},
		{"empty binary becomes an empty base64 string, not null", &types.AttributeValueMemberB{}, `{"B":""}`},
		{"true stays BOOL true", &types.AttributeValueMemberBOOL{Value: true}, `{"BOOL":true}`},
		{"false stays BOOL false", &types.AttributeValueMemberBOOL{Value: false}, `{"BOOL":false}`},
		{"NULL is NULL true", &types.AttributeValueMemberNULL{Value: true}, `{"NULL":true}`},
		{"a string set keeps its members in order", &types.AttributeValueMemberSS{Value: []string{"b", "a"}}, `{"SS":["b","a"]}`},
		{"a number set keeps its decimal texts", &types.AttributeValueMemberNS{Value: []string{"1", "2.50"}}, `{"NS":["1","2.50"]}`},
		{"a binary set is a list of base64 strings", &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}}, `{"BS":["AQ==","AgM="]}`},
		{"a list keeps order and mixed types", &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "x"}, &types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberNULL{Value: true},
		}}, `{"L":[{"S":"x"},{"N":"1"},{"NULL":true}]}`},
		{"an empty list is [], not null", &types.AttributeValueMemberL{Value: nil}, `{"L":[]}`},
		{"a map maps names to typed values", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"a": &types.AttributeValueMemberBOOL{Value: true}, "b": &types.AttributeValueMemberSS{Value: []string{"s"}},
		}}, `{"M":{"a":{"BOOL":true},"b":{"SS":["s"]}}}`},
		{"an empty map is {}, not null", &types.AttributeValueMemberM{Value: nil}, `{"M":{}}`},
		{"nesting goes as deep as the item does", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
					"b": &types.AttributeValueMemberBS{Value: [][]byte{[]byte("hi")}},
				}},
			}},
		}}, `{"M":{"l":{"L":[{"M":{"b":{"BS":["aGk="]}}}]}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := FromStreams(record(tt.in), testStreamARN)
			require.NoError(t, err)
			got, err := json.Marshal(rec.Change.NewImage["v"])
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got), "NewImage.v = %s, want %s", got, tt.want)

			// Whatever the type, Lambda's own decoder gives the same value back.
			all, err := json.Marshal(rec)
			require.NoError(t, err)
			var back events.DynamoDBEventRecord
			require.NoError(t, json.Unmarshal(all, &back))
			assert.Equal(t, rec, back)
		})
	}
}

func TestFromStreamsRejectsWhatItCannotConvert(t *testing.T) {
	tests := []struct {
		name     string
		in       types.AttributeValue
		wantPath string
	}{
		{"an unknown union member at the top is named by its attribute", &types.UnknownUnionMember{Tag: "VEC"}, "dynamodb.NewImage.v"},
		{"an unknown member deep in lists and maps is named by its full path",
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"orders": &types.AttributeValueMemberL{Value: []types.AttributeValue{
					&types.AttributeValueMemberS{Value: "ok"},
					&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"odd key": &types.UnknownUnionMember{Tag: "VEC"}}},
				}},
			}},
			`dynamodb.NewImage.v.orders[1]["odd key"]`},
		{"a nil value is an error, not a dropped attribute", &types.AttributeValueMemberL{Value: []types.AttributeValue{nil}}, "dynamodb.NewImage.v[0]"},
		{"NULL false is not a DynamoDB value", &types.AttributeValueMemberNULL{Value: false}, "dynamodb.NewImage.v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromStreams(record(tt.in), testStreamARN)
			require.Error(t, err)
			var ae *AttributeError
			require.True(t, errors.As(err, &ae), "FromStreams() error = %v, want an *AttributeError", err)
			assert.Equal(t, tt.wantPath, ae.Path)
			assert.True(t, IsAttributeError(err))
			assert.Contains(t, err.Error(), "record 1")
		})
	}
}

func TestFromStreamsRecordFields(t *testing.T) {
	t.Run("a KEYS_ONLY record has no NewImage and no OldImage keys at all", func(t *testing.T) {
		r := record(nil)
		r.Dynamodb.NewImage = nil
		r.Dynamodb.StreamViewType = types.StreamViewTypeKeysOnly
		rec, err := FromStreams(r, testStreamARN)
		require.NoError(t, err)
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "NewImage")
		assert.NotContains(t, string(b), "OldImage")
		assert.NotContains(t, string(b), "userIdentity")
	})
	t.Run("defaults fill what a stream left out: source, version and the region of the stream ARN", func(t *testing.T) {
		rec, err := FromStreams(record(&types.AttributeValueMemberS{Value: "x"}), "arn:aws:dynamodb:eu-west-3:1:table/T/stream/L")
		require.NoError(t, err)
		assert.Equal(t, "aws:dynamodb", rec.EventSource)
		assert.Equal(t, "1.1", rec.EventVersion)
		assert.Equal(t, "eu-west-3", rec.AWSRegion)
		assert.Equal(t, "arn:aws:dynamodb:eu-west-3:1:table/T/stream/L", rec.EventSourceArn)
	})
	t.Run("the stream's own region, source and version win over defaults", func(t *testing.T) {
		r := record(&types.AttributeValueMemberS{Value: "x"})
		r.AwsRegion, r.EventSource, r.EventVersion = aws.String("ddblocal"), aws.String("aws:dynamodb"), aws.String("1.0")
		rec, err := FromStreams(r, testStreamARN)
		require.NoError(t, err)
		assert.Equal(t, "ddblocal", rec.AWSRegion)
		assert.Equal(t, "1.0", rec.EventVersion)
	})
	t.Run("the creation time is whole epoch seconds as a JSON number, rounded down", func(t *testing.T) {
		r := record(&types.AttributeValueMemberS{Value: "x"})
		r.Dynamodb.ApproximateCreationDateTime = aws.Time(time.Unix(1428537600, 999_000_000).In(time.FixedZone("X", 3600)))
		rec, err := FromStreams(r, testStreamARN)
		require.NoError(t, err)
		b, err := json.Marshal(rec.Change)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"ApproximateCreationDateTime":1428537600,`)
	})
	t.Run("a record without a dynamodb field is an error naming the record", func(t *testing.T) {
		_, err := FromStreams(types.Record{EventID: aws.String("abc")}, testStreamARN)
		require.ErrorContains(t, err, "record abc")
	})
}

// TestFromStreamsGolden converts the stream records behind examples documented by AWS and compares
// the whole result with the documented JSON: Lambda's example DynamoDB Streams record, and a delete
// by TTL (DynamoDB developer guide: userIdentity type Service, principalId dynamodb.amazonaws.com).
func TestFromStreamsGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		in     types.Record
	}{
		{"lambda's documented INSERT example comes out field for field", "testdata/lambda-example-record.json", types.Record{
			AwsRegion:    aws.String("us-east-1"),
			EventID:      aws.String("c4ca4238a0b923820dcc509a6f75849b"),
			EventName:    types.OperationTypeInsert,
			EventSource:  aws.String("aws:dynamodb"),
			EventVersion: aws.String("1.1"),
			Dynamodb: &types.StreamRecord{
				ApproximateCreationDateTime: aws.Time(time.Unix(1428537600, 0).UTC()),
				Keys:                        map[string]types.AttributeValue{"Id": &types.AttributeValueMemberN{Value: "101"}},
				NewImage: map[string]types.AttributeValue{
					"Message": &types.AttributeValueMemberS{Value: "New item!"},
					"Id":      &types.AttributeValueMemberN{Value: "101"},
				},
				SequenceNumber: aws.String("4421584500000000017450439091"),
				SizeBytes:      aws.Int64(26),
				StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		}},
		{"a delete by TTL carries the service userIdentity", "testdata/ttl-delete-record.json", types.Record{
			AwsRegion:    aws.String("us-east-1"),
			EventID:      aws.String("a9dd3d4f5b1c4b6b8e3f2f0c6a9d1e42"),
			EventName:    types.OperationTypeRemove,
			EventSource:  aws.String("aws:dynamodb"),
			EventVersion: aws.String("1.1"),
			UserIdentity: &types.Identity{Type: aws.String("Service"), PrincipalId: aws.String("dynamodb.amazonaws.com")},
			Dynamodb: &types.StreamRecord{
				ApproximateCreationDateTime: aws.Time(time.Unix(1428537700, 0)),
				Keys:                        map[string]types.AttributeValue{"Id": &types.AttributeValueMemberN{Value: "101"}},
				OldImage: map[string]types.AttributeValue{
					"Message":   &types.AttributeValueMemberS{Value: "New item!"},
					"Id":        &types.AttributeValueMemberN{Value: "101"},
					"ExpiresAt": &types.AttributeValueMemberN{Value: "1428537000"},
				},
				SequenceNumber: aws.String("4421584600000000017450439092"),
				SizeBytes:      aws.Int64(38),
				StreamViewType: types.StreamViewTypeNewAndOldImages,
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := os.ReadFile(tt.golden)
			require.NoError(t, err)
			rec, err := FromStreams(tt.in, testStreamARN)
			require.NoError(t, err)
			got, err := json.Marshal(rec)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got))
		})
	}
}
