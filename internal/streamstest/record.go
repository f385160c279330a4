package streamstest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Stream view types, for CreateStream. They are the SDK's constants, so either spelling works.
const (
	KeysOnly        = types.StreamViewTypeKeysOnly
	NewImageOnly    = types.StreamViewTypeNewImage
	OldImageOnly    = types.StreamViewTypeOldImage
	NewAndOldImages = types.StreamViewTypeNewAndOldImages
)

// Item is an item's attributes (or its key), in the SDK's DynamoDB Streams types, so records a
// consumer reads back compare equal to what the test put.
type Item = map[string]types.AttributeValue

// Record is one item change to append to a shard with Stream.Put. Build it with Insert, Modify,
// Remove or TTLRemove, or fill it in. The stream's view type decides which images the consumer sees:
// give both and let KEYS_ONLY, NEW_IMAGE or OLD_IMAGE drop what they drop.
type Record struct {
	EventName types.OperationType // INSERT, MODIFY or REMOVE
	Keys      Item                // required
	NewImage  Item                // INSERT and MODIFY
	OldImage  Item                // MODIFY and REMOVE
	// TTL marks a delete done by DynamoDB's time to live: the record carries
	// userIdentity {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}.
	TTL bool
	// CreatedAt is the change's time; zero means the server clock at Put. It is sent rounded down to
	// the second, as ApproximateCreationDateTime.
	CreatedAt time.Time
	// EventID is the record's eventID; empty means one derived from the shard and sequence number
	// (32 hex digits, unique in the stream).
	EventID string
}

// Insert is an INSERT of the item newImage with key keys.
func Insert(keys, newImage Item) Record {
	return Record{EventName: types.OperationTypeInsert, Keys: keys, NewImage: newImage}
}

// Modify is a MODIFY of the item with key keys from oldImage to newImage.
func Modify(keys, oldImage, newImage Item) Record {
	return Record{EventName: types.OperationTypeModify, Keys: keys, OldImage: oldImage, NewImage: newImage}
}

// Remove is a REMOVE of the item oldImage with key keys.
func Remove(keys, oldImage Item) Record {
	return Record{EventName: types.OperationTypeRemove, Keys: keys, OldImage: oldImage}
}

// TTLRemove is a REMOVE done by DynamoDB's time to live (it carries userIdentity).
func TTLRemove(keys, oldImage Item) Record {
	r := Remove(keys, oldImage)
	r.TTL = true
	return r
}

// Inserts returns n INSERT records of items {"pk": S("item-<i>"), "n": N(i)}, i from 0, for tests that
// need volume rather than particular items.
func Inserts(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		key := Item{"pk": S("item-" + strconv.Itoa(i))}
		recs[i] = Insert(key, Item{"pk": key["pk"], "n": N(i)})
	}
	return recs
}

// S is a string attribute.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// Number is what N accepts: Go numbers, or a decimal string as DynamoDB sends it.
type Number interface {
	~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64 | ~float64 | ~string
}

// N is a number attribute.
func N[T Number](v T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

// B is a binary attribute.
func B(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }

// Bool is a BOOL attribute.
func Bool(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

// Null is a NULL attribute.
func Null() types.AttributeValue { return &types.AttributeValueMemberNULL{Value: true} }

// L is a list attribute.
func L(v ...types.AttributeValue) types.AttributeValue { return &types.AttributeValueMemberL{Value: v} }

// M is a map attribute.
func M(v Item) types.AttributeValue { return &types.AttributeValueMemberM{Value: v} }

// SS is a string set attribute.
func SS(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

// NS is a number set attribute (decimal strings).
func NS(v ...string) types.AttributeValue { return &types.AttributeValueMemberNS{Value: v} }

// wireRecord is a record as GetRecords sends it (the Streams API's Record shape).
type wireRecord struct {
	AWSRegion    string        `json:"awsRegion"`
	Dynamodb     wireStreamRec `json:"dynamodb"`
	EventID      string        `json:"eventID"`
	EventName    string        `json:"eventName"`
	EventSource  string        `json:"eventSource"`
	EventVersion string        `json:"eventVersion"`
	UserIdentity *wireIdentity `json:"userIdentity,omitempty"`
}

type wireStreamRec struct {
	ApproximateCreationDateTime int64          `json:"ApproximateCreationDateTime"` // epoch seconds
	Keys                        map[string]any `json:"Keys"`
	NewImage                    map[string]any `json:"NewImage,omitempty"`
	OldImage                    map[string]any `json:"OldImage,omitempty"`
	SequenceNumber              string         `json:"SequenceNumber"`
	SizeBytes                   int64          `json:"SizeBytes"`
	StreamViewType              string         `json:"StreamViewType"`
}

type wireIdentity struct {
	PrincipalID string `json:"PrincipalId"`
	Type        string `json:"Type"`
}

// encodeRecord renders r as the stream (with view type view) sends it. It panics on an invalid
// record: that is a bug in the test.
func encodeRecord(r Record, view types.StreamViewType, region, streamARN, shardID, seq string, created time.Time) ([]byte, int64) {
	switch r.EventName {
	case types.OperationTypeInsert, types.OperationTypeModify, types.OperationTypeRemove:
	default:
		panic(fmt.Sprintf("streamstest: record EventName must be INSERT, MODIFY or REMOVE, got %q", r.EventName))
	}
	if len(r.Keys) == 0 {
		panic("streamstest: record without Keys")
	}
	newImage, oldImage := r.NewImage, r.OldImage
	if r.EventName == types.OperationTypeInsert {
		oldImage = nil
	}
	if r.EventName == types.OperationTypeRemove {
		newImage = nil
	}
	switch view {
	case types.StreamViewTypeKeysOnly:
		newImage, oldImage = nil, nil
	case types.StreamViewTypeNewImage:
		oldImage = nil
	case types.StreamViewTypeOldImage:
		newImage = nil
	}
	size := itemSize(r.Keys) + itemSize(newImage) + itemSize(oldImage)
	eventID := r.EventID
	if eventID == "" {
		sum := sha256.Sum256([]byte(streamARN + "\x00" + shardID + "\x00" + seq))
		eventID = hex.EncodeToString(sum[:16])
	}
	w := wireRecord{
		AWSRegion: region,
		Dynamodb: wireStreamRec{
			ApproximateCreationDateTime: created.Unix(),
			Keys:                        encodeItem(r.Keys),
			NewImage:                    encodeItem(newImage),
			OldImage:                    encodeItem(oldImage),
			SequenceNumber:              seq,
			SizeBytes:                   size,
			StreamViewType:              string(view),
		},
		EventID:      eventID,
		EventName:    string(r.EventName),
		EventSource:  "aws:dynamodb",
		EventVersion: "1.1",
	}
	if r.TTL {
		w.UserIdentity = &wireIdentity{PrincipalID: "dynamodb.amazonaws.com", Type: "Service"}
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(fmt.Sprintf("streamstest: encode record: %v", err))
	}
	return b, size
}

// encodeItem renders an item in DynamoDB JSON; nil for an empty item, so the field is left out.
func encodeItem(it Item) map[string]any {
	if len(it) == 0 {
		return nil
	}
	m := make(map[string]any, len(it))
	for k, v := range it {
		m[k] = encodeValue(v)
	}
	return m
}

func encodeValue(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": v.Value}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = encodeValue(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberM:
		m := make(map[string]any, len(v.Value))
		for k, e := range v.Value {
			m[k] = encodeValue(e)
		}
		return map[string]any{"M": m}
	}
	panic(fmt.Sprintf("streamstest: unsupported attribute value %T", v))
}

// itemSize approximates DynamoDB's item size rules: attribute names plus values.
func itemSize(it Item) int64 {
	var n int64
	for k, v := range it {
		n += int64(len(k)) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int64 {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return int64(len(v.Value))
	case *types.AttributeValueMemberN:
		return int64(len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return int64(len(v.Value))
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		var n int64
		for _, s := range v.Value {
			n += int64(len(s))
		}
		return n
	case *types.AttributeValueMemberNS:
		var n int64
		for _, s := range v.Value {
			n += int64(len(s)+1)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		var n int64
		for _, b := range v.Value {
			n += int64(len(b))
		}
		return n
	case *types.AttributeValueMemberL:
		n := int64(3)
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := int64(3)
		for k, e := range v.Value {
			n += 1 + int64(len(k)) + valueSize(e)
		}
		return n
	}
	return 0
}
