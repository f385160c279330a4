// Package event turns DynamoDB Streams records, as the AWS SDK returns them, into the records AWS
// Lambda hands a DynamoDB Streams trigger, so a handler written for Lambda works unchanged.
package event

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Defaults for record fields that Lambda always sends but a stream (or an emulator) may leave out.
const (
	// EventSource is Lambda's eventSource for DynamoDB Streams records.
	EventSource = "aws:dynamodb"
	// EventVersion is the record format version real DynamoDB Streams records carry today.
	EventVersion = "1.1"
)

// AttributeError says which attribute of a record could not be converted and why.
type AttributeError struct {
	// Path locates the attribute, e.g. `dynamodb.NewImage.Orders[2].Price`.
	Path string
	// Msg says what is wrong with it.
	Msg string
}

func (e *AttributeError) Error() string { return e.Path + ": " + e.Msg }

// FromStreams converts one record of GetRecords into the record Lambda sends for it:
//   - eventID, eventName, eventVersion ("1.1" when the stream leaves it out), eventSource
//     ("aws:dynamodb" when left out), awsRegion (taken from the stream ARN when left out);
//   - dynamodb.ApproximateCreationDateTime as whole epoch seconds (Lambda rounds down), Keys,
//     NewImage and OldImage (absent, not null, when the stream view has no such image),
//     SequenceNumber, SizeBytes and StreamViewType;
//   - eventSourceARN is streamARN;
//   - userIdentity only when the stream sets it (deletes by TTL).
//
// Attribute values keep their DynamoDB type (S, N, B, SS, NS, BS, M, L, NULL, BOOL, nested to any
// depth); binary is base64 on the wire. An attribute value the SDK could not decode (a union member
// unknown to it) is an *AttributeError naming its path: a record is never delivered with a value
// silently left out.
func FromStreams(r types.Record, streamARN string) (events.DynamoDBEventRecord, error) {
	id := deref(r.EventID)
	if r.Dynamodb == nil {
		return events.DynamoDBEventRecord{}, fmt.Errorf("record %s: no dynamodb field", id)
	}
	sr := r.Dynamodb
	out := events.DynamoDBEventRecord{
		AWSRegion:      deref(r.AwsRegion),
		EventID:        id,
		EventName:      string(r.EventName),
		EventSource:    deref(r.EventSource),
		EventVersion:   deref(r.EventVersion),
		EventSourceArn: streamARN,
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: deref(sr.SequenceNumber),
			StreamViewType: string(sr.StreamViewType),
		},
	}
	if out.AWSRegion == "" {
		out.AWSRegion = regionOf(streamARN)
	}
	if out.EventSource == "" {
		out.EventSource = EventSource
	}
	if out.EventVersion == "" {
		out.EventVersion = EventVersion
	}
	if sr.SizeBytes != nil {
		out.Change.SizeBytes = *sr.SizeBytes
	}
	// Lambda sends whole seconds, rounded down. time.Unix gives the same value (and location) that
	// decoding the JSON gives back. A record without a creation time (never seen from DynamoDB) gets
	// the epoch rather than the zero time, whose UnixNano would overflow.
	created := time.Unix(0, 0)
	if t := sr.ApproximateCreationDateTime; t != nil {
		created = time.Unix(t.Unix(), 0)
	}
	out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: created}
	if r.UserIdentity != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{
			Type:        deref(r.UserIdentity.Type),
			PrincipalID: deref(r.UserIdentity.PrincipalId),
		}
	}

	var err error
	// An empty map is left nil, as its JSON leaves it out: then the record's JSON decodes back to
	// the same value. (Streams never send an empty Keys or image; absent images are the rule.)
	if len(sr.Keys) > 0 {
		if out.Change.Keys, err = convertMap(sr.Keys); err != nil {
			return events.DynamoDBEventRecord{}, fmt.Errorf("record %s: %w", id, prefixPath("dynamodb.Keys", err))
		}
	}
	if len(sr.NewImage) > 0 {
		if out.Change.NewImage, err = convertMap(sr.NewImage); err != nil {
			return events.DynamoDBEventRecord{}, fmt.Errorf("record %s: %w", id, prefixPath("dynamodb.NewImage", err))
		}
	}
	if len(sr.OldImage) > 0 {
		if out.Change.OldImage, err = convertMap(sr.OldImage); err != nil {
			return events.DynamoDBEventRecord{}, fmt.Errorf("record %s: %w", id, prefixPath("dynamodb.OldImage", err))
		}
	}
	return out, nil
}

// convertMap converts a map of attribute values. The result is never nil: an empty map must encode
// as {} (an empty M, or Keys), not null, which Lambda never sends. An error is an *AttributeError
// whose Path is relative to m: paths are built from the failing value outwards (prefixPath), so
// that converting builds no path strings unless something fails.
func convertMap(m map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		av, err := convert(v)
		if err != nil {
			return nil, prefixPath(pathKey(k), err)
		}
		out[k] = av
	}
	return out, nil
}

// convert converts one attribute value. Slices are made non-nil so that an empty L (or an empty
// binary) encodes as [] (or ""), never as null. An error is an *AttributeError whose Path is
// relative to v.
func convert(v types.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(nonNilBytes(v.Value)), nil
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *types.AttributeValueMemberNULL:
		// DynamoDB only has NULL: true; false would be a value Lambda cannot express.
		if !v.Value {
			return events.DynamoDBAttributeValue{}, &AttributeError{Msg: "NULL attribute with value false"}
		}
		return events.NewNullAttribute(), nil
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(nonNil(v.Value)), nil
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(nonNil(v.Value)), nil
	case *types.AttributeValueMemberBS:
		bs := make([][]byte, len(v.Value))
		for i, b := range v.Value {
			bs[i] = nonNilBytes(b)
		}
		return events.NewBinarySetAttribute(bs), nil
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			av, err := convert(e)
			if err != nil {
				return events.DynamoDBAttributeValue{}, prefixPath("["+strconv.Itoa(i)+"]", err)
			}
			l[i] = av
		}
		return events.NewListAttribute(l), nil
	case *types.AttributeValueMemberM:
		m, err := convertMap(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	case *types.UnknownUnionMember:
		return events.DynamoDBAttributeValue{}, &AttributeError{Msg: fmt.Sprintf("unknown attribute value type %q", v.Tag)}
	case nil:
		return events.DynamoDBAttributeValue{}, &AttributeError{Msg: "missing attribute value"}
	default:
		return events.DynamoDBAttributeValue{}, &AttributeError{Msg: fmt.Sprintf("unsupported attribute value type %T", v)}
	}
}

// pathKey renders a map key as a path step: .Name for plain names, ["odd key"] otherwise.
func pathKey(k string) string {
	if k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		return "." + k
	}
	return fmt.Sprintf("[%q]", k)
}

// regionOf returns the region of an ARN (arn:partition:service:region:...), or "".
func regionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 || parts[0] != "arn" {
		return ""
	}
	return parts[3]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// IsAttributeError reports whether err is (or wraps) an *AttributeError.
func IsAttributeError(err error) bool {
	var ae *AttributeError
	return errors.As(err, &ae)
}
