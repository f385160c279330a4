package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// gen draws random attribute values from a byte stream, so the same generator serves the fuzzer
// (which mutates the bytes) and the seeded property test. An exhausted stream reads as zeros, which
// ends every structure, so any input gives a finite value.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) bytes() []byte {
	n := int(g.byte() % 8)
	out := make([]byte, 0, n)
	for range n {
		out = append(out, g.byte())
	}
	return out
}

// str gives strings with quotes, backslashes, control characters, non-ASCII and invalid UTF-8
// replaced by valid runes (DynamoDB strings are UTF-8).
func (g *gen) str() string {
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\x00", "é", "日", "😀", "<", "&", "\u2028", ".", "\b", "\f", "\x1f", "\u2029", ">"}
	n := int(g.byte() % 6)
	var s string
	for range n {
		s += alphabet[int(g.byte())%len(alphabet)]
	}
	return s
}

func (g *gen) num() string {
	nums := []string{"0", "-1", "3.14", "1E+10", "-0.000001", "99999999999999999999999999999999999999", "1e-130"}
	return nums[int(g.byte())%len(nums)]
}

func (g *gen) value(depth int) types.AttributeValue {
	kinds := 10
	if depth >= 4 {
		kinds = 8 // no more L or M
	}
	switch int(g.byte()) % kinds {
	case 0:
		return &types.AttributeValueMemberS{Value: g.str()}
	case 1:
		return &types.AttributeValueMemberN{Value: g.num()}
	case 2:
		return &types.AttributeValueMemberB{Value: g.bytes()}
	case 3:
		return &types.AttributeValueMemberBOOL{Value: g.byte()%2 == 1}
	case 4:
		return &types.AttributeValueMemberNULL{Value: true}
	case 5:
		n := 1 + int(g.byte()%4)
		ss := make([]string, n)
		for i := range ss {
			ss[i] = g.str()
		}
		return &types.AttributeValueMemberSS{Value: ss}
	case 6:
		n := 1 + int(g.byte()%4)
		ns := make([]string, n)
		for i := range ns {
			ns[i] = g.num()
		}
		return &types.AttributeValueMemberNS{Value: ns}
	case 7:
		n := 1 + int(g.byte()%4)
		bs := make([][]byte, n)
		for i := range bs {
			bs[i] = g.bytes()
		}
		return &types.AttributeValueMemberBS{Value: bs}
	case 8:
		n := int(g.byte() % 4)
		l := make([]types.AttributeValue, n)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return &types.AttributeValueMemberL{Value: l}
	default:
		return &types.AttributeValueMemberM{Value: g.item(depth + 1)}
	}
}

func (g *gen) item(depth int) map[string]types.AttributeValue {
	n := int(g.byte() % 4)
	m := make(map[string]types.AttributeValue, n)
	for range n {
		m[g.str()] = g.value(depth)
	}
	return m
}

// checkRoundTrip is the property: the record's JSON is valid DynamoDB JSON that decodes back, through
// a decoder written from the DynamoDB JSON spec, to the very attribute values the stream gave; and
// Lambda's own decoder (events' UnmarshalJSON) gives back the same record.
func checkRoundTrip(t *testing.T, newImage map[string]types.AttributeValue) {
	t.Helper()
	r := record(nil)
	r.Dynamodb.NewImage = newImage
	rec, err := FromStreams(r, testStreamARN)
	if err != nil {
		t.Fatalf("FromStreams() error = %v", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatalf("json.Marshal(record) error = %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("record JSON is not valid JSON: %s", b)
	}
	fast, err := AppendJSON(nil, &rec)
	if err != nil {
		t.Fatalf("AppendJSON() error = %v", err)
	}
	if !bytes.Equal(fast, b) {
		t.Fatalf("AppendJSON() = %s\nwant (json.Marshal) %s", fast, b)
	}

	var raw struct {
		Dynamodb struct {
			NewImage json.RawMessage
		} `json:"dynamodb"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("decode record JSON: %v", err)
	}
	if len(newImage) == 0 {
		// An empty image is left out, as Lambda never sends an empty one.
		if raw.Dynamodb.NewImage != nil {
			t.Fatalf("empty NewImage encoded as %s, want it absent", raw.Dynamodb.NewImage)
		}
	} else {
		got, err := decodeItem(raw.Dynamodb.NewImage, "NewImage")
		if err != nil {
			t.Fatalf("NewImage is not valid DynamoDB JSON: %v\n%s", err, raw.Dynamodb.NewImage)
		}
		if !reflect.DeepEqual(got, newImage) {
			t.Fatalf("NewImage decoded = %#v, want %#v\n%s", got, newImage, raw.Dynamodb.NewImage)
		}
	}

	var back events.DynamoDBEventRecord
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("events.DynamoDBEventRecord UnmarshalJSON error = %v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, rec) {
		t.Fatalf("events round trip = %#v, want %#v", back, rec)
	}
}

// decodeItem is a strict DynamoDB JSON decoder: every value is an object with exactly one of the ten
// type keys, holding the JSON type that key requires; numbers are strings; binary is standard base64.
func decodeItem(b json.RawMessage, path string) (map[string]types.AttributeValue, error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: want an object, got %s", path, b)
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		av, err := decodeValue(v, path+"."+k)
		if err != nil {
			return nil, err
		}
		out[k] = av
	}
	return out, nil
}

func decodeValue(b json.RawMessage, path string) (types.AttributeValue, error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(b, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("%s: want an object with one type key, got %s", path, b)
	}
	for typ, v := range m {
		switch typ {
		case "S", "N":
			var s string
			if err := strictUnmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s.%s: want a string, got %s", path, typ, v)
			}
			if typ == "N" {
				if _, err := strconv.ParseFloat(s, 64); err != nil && !isRangeErr(err) {
					return nil, fmt.Errorf("%s.N: %q is not a number", path, s)
				}
				return &types.AttributeValueMemberN{Value: s}, nil
			}
			return &types.AttributeValueMemberS{Value: s}, nil
		case "B":
			d, err := b64(v)
			if err != nil {
				return nil, fmt.Errorf("%s.B: %w", path, err)
			}
			return &types.AttributeValueMemberB{Value: d}, nil
		case "BOOL":
			var x bool
			if err := strictUnmarshal(v, &x); err != nil {
				return nil, fmt.Errorf("%s.BOOL: want a boolean, got %s", path, v)
			}
			return &types.AttributeValueMemberBOOL{Value: x}, nil
		case "NULL":
			if string(v) != "true" {
				return nil, fmt.Errorf("%s.NULL: want true, got %s", path, v)
			}
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "SS", "NS":
			var ss []string
			if err := strictUnmarshal(v, &ss); err != nil || ss == nil {
				return nil, fmt.Errorf("%s.%s: want a list of strings, got %s", path, typ, v)
			}
			if typ == "NS" {
				return &types.AttributeValueMemberNS{Value: ss}, nil
			}
			return &types.AttributeValueMemberSS{Value: ss}, nil
		case "BS":
			var l []json.RawMessage
			if err := strictUnmarshal(v, &l); err != nil || l == nil {
				return nil, fmt.Errorf("%s.BS: want a list, got %s", path, v)
			}
			bs := make([][]byte, len(l))
			for i, e := range l {
				d, err := b64(e)
				if err != nil {
					return nil, fmt.Errorf("%s.BS[%d]: %w", path, i, err)
				}
				bs[i] = d
			}
			return &types.AttributeValueMemberBS{Value: bs}, nil
		case "L":
			var l []json.RawMessage
			if err := strictUnmarshal(v, &l); err != nil || l == nil {
				return nil, fmt.Errorf("%s.L: want a list, got %s", path, v)
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				av, err := decodeValue(e, fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, err
				}
				out[i] = av
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		case "M":
			m, err := decodeItem(v, path)
			if err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberM{Value: m}, nil
		default:
			return nil, fmt.Errorf("%s: unknown type key %q", path, typ)
		}
	}
	panic("unreachable")
}

func strictUnmarshal(b []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return errors.New("null")
	}
	return json.Unmarshal(b, v)
}

func b64(v json.RawMessage) ([]byte, error) {
	var s string
	if err := strictUnmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("want a base64 string, got %s", v)
	}
	d, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not standard base64: %w", s, err)
	}
	return d, nil
}

func isRangeErr(err error) bool {
	return errors.Is(err, strconv.ErrRange)
}

func TestFromStreamsRandomValuesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		g := &gen{b: b}
		item := g.item(0)
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkRoundTrip(t, item) })
	}
}

// FuzzFromStreams runs the same property on values built from fuzzer-mutated bytes:
// go test -fuzz FuzzFromStreams ./pkg/event/
func FuzzFromStreams(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 9, 1, 0, 0, 2, 8, 3, 8, 2, 9, 1, 7, 5})
	f.Add([]byte("deeply nested maps and lists of every type"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &gen{b: b}
		checkRoundTrip(t, g.item(0))
	})
}

// The dispatcher encodes each record once, into a scratch buffer it reuses from record to record,
// and keeps a copy: what sinks write. Those kept bytes must be exactly a fresh encoding of the
// record (and json.Marshal's), whatever the buffer held before: longer records, escapes, images.
func TestKeptJSONIsAFreshEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var scratch []byte
	var recs []events.DynamoDBEventRecord
	var kept [][]byte
	for range 500 {
		b := make([]byte, 1+rng.IntN(512))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		r := record(nil)
		r.Dynamodb.NewImage = (&gen{b: b}).item(0)
		rec, err := FromStreams(r, testStreamARN)
		if err != nil {
			t.Fatal(err)
		}
		if scratch, err = AppendJSON(scratch[:0], &rec); err != nil {
			t.Fatal(err)
		}
		recs, kept = append(recs, rec), append(kept, bytes.Clone(scratch))
	}
	for i := range recs {
		fresh, err := AppendJSON(nil, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		marshaled, err := json.Marshal(recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kept[i], fresh) || !bytes.Equal(kept[i], marshaled) {
			t.Fatalf("record %d: kept %s\nfresh %s\njson.Marshal %s", i, kept[i], fresh, marshaled)
		}
	}
}
