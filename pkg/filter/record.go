package filter

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// kind says what a value is, as a node of the record's JSON (the JSON Lambda gives a handler, and
// the one poller's sinks send). Leaves are strings, numbers, booleans and null; the rest are
// objects and arrays.
type kind uint8

const (
	kMissing  kind = iota // no such field
	kString               // s; num marks a DynamoDB number ("N", or an element of "NS")
	kNumber               // s: a JSON number (SizeBytes, ApproximateCreationDateTime)
	kBool                 // b
	kNull                 // JSON null
	kBinary               // bin: a "B" payload, a base64 string in JSON
	kRecord               // rec: the record
	kChange               // rec.Change: the "dynamodb" object
	kIdentity             // rec.UserIdentity: the "userIdentity" object
	kItem                 // item: attribute values by name (Keys, NewImage, OldImage, an "M" payload)
	kAttr                 // av: one attribute value, the object {"<type>": payload}
	kList                 // av.List(): an "L" payload, an array of attribute values
	kStrings              // av.StringSet(), or av.NumberSet() when num is set: an "SS" or "NS" payload
	kBinaries             // av.BinarySet(): a "BS" payload, an array of base64 strings
	kJSON                 // j: decoded JSON (map[string]any, []any); num marks the payload of "NS"
)

// value is one node of the record's JSON, viewed in place: walking the record this way costs
// no marshalling and, except for binary values and JSON numbers, no allocation. Values are small
// and passed by value: a pointer to one, passed down the recursive match, would make the compiler
// move every value to the heap. A value refers to the record and must not outlive the Match call
// that made it.
type value struct {
	k    kind
	num  bool
	b    bool
	s    string
	bin  []byte
	item map[string]events.DynamoDBAttributeValue
	av   events.DynamoDBAttributeValue // the attribute value of kAttr, and the holder of payload arrays
	rec  *events.DynamoDBEventRecord
	j    any
}

func str(s string) value { return value{k: kString, s: s} }

// field returns the member name of an object, or a missing value when v is not an object or has no
// such member. Members follow the JSON encoding of aws-lambda-go's types: strings without omitempty
// are always present, even empty; Keys, NewImage, OldImage and userIdentity only when set.
func (v value) field(name string) value {
	switch v.k {
	case kRecord:
		r := v.rec
		switch name {
		case "awsRegion":
			return str(r.AWSRegion)
		case "dynamodb":
			return value{k: kChange, rec: r}
		case "eventID":
			return str(r.EventID)
		case "eventName":
			return str(r.EventName)
		case "eventSource":
			return str(r.EventSource)
		case "eventVersion":
			return str(r.EventVersion)
		case "eventSourceARN":
			return str(r.EventSourceArn)
		case "userIdentity":
			if r.UserIdentity != nil {
				return value{k: kIdentity, rec: r}
			}
		}
	case kChange:
		c := &v.rec.Change
		switch name {
		case "ApproximateCreationDateTime":
			// A zero time has no meaningful JSON (its epoch overflows), so it counts as absent.
			if !c.ApproximateCreationDateTime.IsZero() {
				return value{k: kNumber, s: epochSeconds(c.ApproximateCreationDateTime.Unix(), c.ApproximateCreationDateTime.Nanosecond())}
			}
		case "Keys":
			return image(c.Keys)
		case "NewImage":
			return image(c.NewImage)
		case "OldImage":
			return image(c.OldImage)
		case "SequenceNumber":
			return str(c.SequenceNumber)
		case "SizeBytes":
			return value{k: kNumber, s: strconv.FormatInt(c.SizeBytes, 10)}
		case "StreamViewType":
			return str(c.StreamViewType)
		}
	case kIdentity:
		switch name {
		case "type":
			return str(v.rec.UserIdentity.Type)
		case "principalId":
			return str(v.rec.UserIdentity.PrincipalID)
		}
	case kItem:
		if av, ok := v.item[name]; ok {
			return value{k: kAttr, av: av}
		}
	case kAttr:
		return payload(v.av, name)
	case kJSON:
		if m, ok := v.j.(map[string]any); ok {
			if x, ok := m[name]; ok {
				return jsonValue(x, name)
			}
		}
	}
	return value{}
}

// image is Keys, NewImage or OldImage: omitted from the JSON when empty.
func image(m map[string]events.DynamoDBAttributeValue) value {
	if len(m) == 0 {
		return value{}
	}
	return value{k: kItem, item: m}
}

// payload is the member tag of the attribute value av: present only when tag is av's type. A nil
// payload is JSON null, as encoding/json writes a nil slice or map.
func payload(av events.DynamoDBAttributeValue, tag string) value {
	switch av.DataType() {
	case events.DataTypeString:
		if tag == "S" {
			return str(av.String())
		}
	case events.DataTypeNumber:
		if tag == "N" {
			return value{k: kString, s: av.Number(), num: true}
		}
	case events.DataTypeBinary:
		if tag == "B" {
			if av.IsNull() { // the zero DynamoDBAttributeValue: a B with no payload at all
				return value{k: kNull}
			}
			if b := av.Binary(); b != nil {
				return value{k: kBinary, bin: b}
			}
			return value{k: kNull}
		}
	case events.DataTypeBoolean:
		if tag == "BOOL" {
			return value{k: kBool, b: av.Boolean()}
		}
	case events.DataTypeNull:
		if tag == "NULL" {
			return value{k: kBool, b: true}
		}
	case events.DataTypeStringSet:
		if tag == "SS" {
			if av.StringSet() != nil {
				return value{k: kStrings, av: av}
			}
			return value{k: kNull}
		}
	case events.DataTypeNumberSet:
		if tag == "NS" {
			if av.NumberSet() != nil {
				return value{k: kStrings, av: av, num: true}
			}
			return value{k: kNull}
		}
	case events.DataTypeBinarySet:
		if tag == "BS" {
			if av.BinarySet() != nil {
				return value{k: kBinaries, av: av}
			}
			return value{k: kNull}
		}
	case events.DataTypeList:
		if tag == "L" {
			if av.List() != nil {
				return value{k: kList, av: av}
			}
			return value{k: kNull}
		}
	case events.DataTypeMap:
		if tag == "M" {
			if m := av.Map(); m != nil {
				return value{k: kItem, item: m}
			}
			return value{k: kNull}
		}
	}
	return value{}
}

// jsonValue wraps decoded JSON (decoded with UseNumber) found under the member key: strings under
// "N", and the elements of an array under "NS", are DynamoDB numbers.
func jsonValue(x any, key string) value {
	switch x := x.(type) {
	case string:
		return value{k: kString, s: x, num: key == "N"}
	case json.Number:
		return value{k: kNumber, s: string(x)}
	case float64:
		return value{k: kNumber, s: strconv.FormatFloat(x, 'g', -1, 64)}
	case bool:
		return value{k: kBool, b: x}
	case nil:
		return value{k: kNull}
	case map[string]any:
		return value{k: kJSON, j: x}
	case []any:
		return value{k: kJSON, j: x, num: key == "NS"}
	}
	return value{}
}

// array reports whether v is a JSON array, and its length.
func (v value) array() (int, bool) {
	switch v.k {
	case kList:
		return len(v.av.List()), true
	case kStrings:
		return len(v.strings()), true
	case kBinaries:
		return len(v.av.BinarySet()), true
	case kJSON:
		if a, ok := v.j.([]any); ok {
			return len(a), true
		}
	}
	return 0, false
}

// strings is the payload of kStrings.
func (v value) strings() []string {
	if v.num {
		return v.av.NumberSet()
	}
	return v.av.StringSet()
}

// elem returns element i of the array v.
func (v value) elem(i int) value {
	switch v.k {
	case kList:
		return value{k: kAttr, av: v.av.List()[i]}
	case kStrings:
		return value{k: kString, s: v.strings()[i], num: v.num}
	case kBinaries:
		b := v.av.BinarySet()[i]
		if b == nil {
			return value{k: kNull}
		}
		return value{k: kBinary, bin: b}
	case kJSON:
		key := ""
		if v.num {
			key = "N"
		}
		return jsonValue(v.j.([]any)[i], key)
	}
	return value{}
}

// leafKind is the JSON type of a leaf value.
type leafKind uint8

const (
	lString leafKind = iota
	lNumber
	lBool
	lNull
)

// leaf is a leaf value of the record's JSON: what the matchers compare.
type leaf struct {
	k   leafKind
	num bool // an lString holding a DynamoDB number
	b   bool
	s   string // lString: the string; lNumber: the number's JSON text
}

// asLeaf returns v as a leaf, or false when v is an object, an array or missing.
func (v value) asLeaf() (leaf, bool) {
	switch v.k {
	case kString:
		return leaf{k: lString, s: v.s, num: v.num}, true
	case kNumber:
		return leaf{k: lNumber, s: v.s}, true
	case kBool:
		return leaf{k: lBool, b: v.b}, true
	case kNull:
		return leaf{k: lNull}, true
	case kBinary:
		return leaf{k: lString, s: base64.StdEncoding.EncodeToString(v.bin)}, true
	}
	return leaf{}, false
}

// epochSeconds writes a Unix time in seconds as an exact decimal: what Lambda's
// ApproximateCreationDateTime means, without float rounding.
func epochSeconds(sec int64, nsec int) string {
	if nsec == 0 {
		return strconv.FormatInt(sec, 10)
	}
	sign := ""
	if sec < 0 { // -1.5 s is Unix() -2 plus 0.5 s: write it as -(1 + 0.5)
		sign, sec, nsec = "-", -(sec + 1), 1e9-nsec
	}
	frac := strconv.Itoa(nsec + 1e9)[1:] // nine digits, leading zeros kept
	for frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return sign + strconv.FormatInt(sec, 10) + "." + frac
}
