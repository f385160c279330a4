package filter

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestExactValues(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "a string matches the same event name", pattern: `{"eventName": ["MODIFY"]}`, want: true},
		{name: "a string does not match another event name", pattern: `{"eventName": ["INSERT"]}`, want: false},
		{name: "strings compare case and all", pattern: `{"eventName": ["modify"]}`, want: false},
		{name: "values in one list are alternatives", pattern: `{"eventName": ["INSERT", "MODIFY"]}`, want: true},
		{name: "a typed string attribute matches through its S", pattern: `{"dynamodb": {"NewImage": {"GameTitle": {"S": ["Galaxy Invaders"]}}}}`, want: true},
		{name: "a DynamoDB number matches as the string it is", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": ["5842"]}}}}`, want: true},
		{name: "a bare number does not match a DynamoDB number, as in Lambda", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [5842]}}}}`, want: false},
		{name: "a number matches a JSON number of the record", pattern: `{"dynamodb": {"SizeBytes": [260]}}`, want: true},
		{name: "a number matches a JSON number of equal value written otherwise", pattern: `{"dynamodb": {"SizeBytes": [2.60e2]}}`, want: true},
		{name: "a number does not match another JSON number", pattern: `{"dynamodb": {"SizeBytes": [261]}}`, want: false},
		{name: "a string does not match a JSON number", pattern: `{"dynamodb": {"SizeBytes": ["260"]}}`, want: false},
		{name: "true matches a true BOOL", pattern: `{"dynamodb": {"NewImage": {"Active": {"BOOL": [true]}}}}`, want: true},
		{name: "false does not match a true BOOL", pattern: `{"dynamodb": {"NewImage": {"Active": {"BOOL": [false]}}}}`, want: false},
		{name: "the string true does not match a true BOOL", pattern: `{"dynamodb": {"NewImage": {"Active": {"BOOL": ["true"]}}}}`, want: false},
		{name: "true matches a NULL attribute's marker", pattern: `{"dynamodb": {"NewImage": {"Coach": {"NULL": [true]}}}}`, want: true},
		{name: "null matches a JSON null", pattern: `{"dynamodb": {"NewImage": {"Nothing": {"M": [null]}}}}`, want: true},
		{name: "null does not match a missing field", pattern: `{"userIdentity": [null]}`, want: false},
		{name: "null does not match an empty string", pattern: `{"dynamodb": {"NewImage": {"Empty": {"S": [null]}}}}`, want: false},
		{name: "an empty string matches an empty string", pattern: `{"dynamodb": {"NewImage": {"Empty": {"S": [""]}}}}`, want: true},
		{name: "an empty string does not match a non-empty string", pattern: `{"dynamodb": {"NewImage": {"GameTitle": {"S": [""]}}}}`, want: false},
		{name: "an empty string does not match a missing attribute", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": [""]}}}}`, want: false},
		{name: "exactly matches the same string", pattern: `{"eventName": [{"exactly": "MODIFY"}]}`, want: true},
		{name: "exactly does not match another string", pattern: `{"eventName": [{"exactly": "REMOVE"}]}`, want: false},
		{name: "a string matches one element of a string set", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": ["space"]}}}}`, want: true},
		{name: "a string matches no element of a string set", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": ["rpg"]}}}}`, want: false},
		{name: "a binary matches its base64 text", pattern: `{"dynamodb": {"NewImage": {"Avatar": {"B": ["AQID"]}}}}`, want: true},
		{name: "a value under the wrong type tag does not match", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"S": ["5842"]}}}}`, want: false},
		{name: "a field the record lacks does not match", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": ["x"]}}}}`, want: false},
		{name: "an attribute of a nested map matches through M", pattern: `{"dynamodb": {"NewImage": {"Profile": {"M": {"Country": {"S": ["FR"]}}}}}}`, want: true},
		{name: "an attribute inside a list of maps matches through L", pattern: `{"dynamodb": {"NewImage": {"History": {"L": {"M": {"Game": {"S": ["Tetris"]}}}}}}}`, want: true},
		{name: "the region matches", pattern: `{"awsRegion": ["us-east-1"]}`, want: true},
		{name: "the event source matches", pattern: `{"eventSource": ["aws:dynamodb"], "eventVersion": ["1.1"]}`, want: true},
		{name: "the event ID matches", pattern: `{"eventID": ["c4ca4238a0b923820dcc509a6f75849b"]}`, want: true},
		{name: "the sequence number and view type match", pattern: `{"dynamodb": {"SequenceNumber": ["111"], "StreamViewType": ["NEW_AND_OLD_IMAGES"]}}`, want: true},
		{name: "a key matches", pattern: `{"dynamodb": {"Keys": {"UserId": {"S": ["101"]}}}}`, want: true},
		{name: "an old image attribute matches", pattern: `{"dynamodb": {"OldImage": {"TopScore": {"N": ["4000"]}}}}`, want: true},
		{
			name: "an empty event name is present and matches the empty string", pattern: `{"eventName": [""]}`,
			edit: func(r *events.DynamoDBEventRecord) { r.EventName = "" }, want: true,
		},
		{
			name: "an old image the record lacks does not match", pattern: `{"dynamodb": {"OldImage": {"TopScore": {"N": ["4000"]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.OldImage = nil }, want: false,
		},
	})
}

func TestAndOr(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "all fields of a pattern must match", pattern: `{"eventName": ["MODIFY"], "dynamodb": {"Keys": {"UserId": {"S": ["101"]}}}}`, want: true},
		{name: "one failing field fails the pattern", pattern: `{"eventName": ["MODIFY"], "dynamodb": {"Keys": {"UserId": {"S": ["102"]}}}}`, want: false},
		{name: "$or matches when its first branch does", pattern: `{"$or": [{"eventName": ["MODIFY"]}, {"awsRegion": ["eu-west-1"]}]}`, want: true},
		{name: "$or matches when its last branch does", pattern: `{"$or": [{"eventName": ["INSERT"]}, {"awsRegion": ["us-east-1"]}]}`, want: true},
		{name: "$or fails when no branch matches", pattern: `{"$or": [{"eventName": ["INSERT"]}, {"awsRegion": ["eu-west-1"]}]}`, want: false},
		{name: "$or is ANDed with the fields beside it", pattern: `{"eventName": ["INSERT"], "$or": [{"eventName": ["MODIFY"]}, {"awsRegion": ["us-east-1"]}]}`, want: false},
		{name: "$or nested in an object looks at that object", pattern: `{"dynamodb": {"$or": [{"Keys": {"UserId": {"S": ["101"]}}}, {"SizeBytes": [1]}]}}`, want: true},
		{name: "two $or groups in one object must both match", pattern: `{"$or": [{"eventName": ["MODIFY"]}, {"awsRegion": ["x"]}], "dynamodb": {"$or": [{"SizeBytes": [1]}, {"SequenceNumber": ["2"]}]}}`, want: false},
		{name: "a $or branch is an AND of its fields", pattern: `{"$or": [{"eventName": ["MODIFY"], "awsRegion": ["eu-west-1"]}, {"eventID": ["x"]}]}`, want: false},
		{name: "a $or nested in a $or branch applies", pattern: `{"$or": [{"eventID": ["x"]}, {"eventName": ["MODIFY"], "$or": [{"awsRegion": ["x"]}, {"eventSource": ["aws:dynamodb"]}]}]}`, want: true},
		{name: "a repeated value list keeps the last one", pattern: `{"eventName": ["INSERT"], "eventName": ["MODIFY"]}`, want: true},
		{name: "a repeated value list drops the earlier one", pattern: `{"eventName": ["MODIFY"], "eventName": ["INSERT"]}`, want: false},
		{name: "a repeated object key requires both objects", pattern: `{"dynamodb": {"SizeBytes": [260]}, "dynamodb": {"SizeBytes": [1]}}`, want: false},
		{name: "fields of one object pattern match within one list element", pattern: `{"dynamodb": {"NewImage": {"History": {"L": {"M": {"Game": {"S": ["Pong"]}, "Score": {"N": ["10"]}}}}}}}`, want: true},
		{name: "fields of one object pattern are not combined across list elements", pattern: `{"dynamodb": {"NewImage": {"History": {"L": {"M": {"Game": {"S": ["Pong"]}, "Score": {"N": ["99"]}}}}}}}`, want: false},
	})
}

func TestPrefixSuffix(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "prefix matches the start of a string", pattern: `{"eventSourceARN": [{"prefix": "arn:aws:dynamodb:us-east-1:"}]}`, want: true},
		{name: "prefix does not match another start", pattern: `{"eventSourceARN": [{"prefix": "arn:aws:dynamodb:us-west-2:"}]}`, want: false},
		{name: "prefix is case-sensitive", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"prefix": "alice"}]}}}}`, want: false},
		{name: "prefix with equals-ignore-case ignores case", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"prefix": {"equals-ignore-case": "ALICE@"}}]}}}}`, want: true},
		{name: "prefix with equals-ignore-case still needs the prefix", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"prefix": {"equals-ignore-case": "bob@"}}]}}}}`, want: false},
		{name: "prefix applies to a DynamoDB number, a string", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"prefix": "58"}]}}}}`, want: true},
		{name: "prefix does not apply to a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"prefix": "2"}]}}`, want: false},
		{name: "an empty prefix matches any string", pattern: `{"dynamodb": {"NewImage": {"Empty": {"S": [{"prefix": ""}]}}}}`, want: true},
		{name: "suffix matches the end of a string", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"suffix": ".png"}]}}}}`, want: true},
		{name: "suffix is case-sensitive", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"suffix": ".PNG"}]}}}}`, want: false},
		{name: "suffix with equals-ignore-case ignores case", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"suffix": {"equals-ignore-case": "EXAMPLE.com"}}]}}}}`, want: true},
		{name: "suffix with equals-ignore-case still needs the suffix", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"suffix": {"equals-ignore-case": ".JPG"}}]}}}}`, want: false},
		{name: "prefix matches one element of a string set", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": [{"prefix": "spa"}]}}}}`, want: true},
		{name: "prefix on a missing attribute does not match", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": [{"prefix": ""}]}}}}`, want: false},
	})
}

func TestEqualsIgnoreCase(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "equals-ignore-case matches another casing", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"equals-ignore-case": "alice@example.com"}]}}}}`, want: true},
		{name: "equals-ignore-case does not match another string", pattern: `{"dynamodb": {"NewImage": {"Email": {"S": [{"equals-ignore-case": "bob@example.com"}]}}}}`, want: false},
		{name: "equals-ignore-case folds non-ASCII letters", pattern: `{"dynamodb": {"NewImage": {"Greek": {"S": [{"equals-ignore-case": "σας"}]}}}}`, want: true},
		{name: "equals-ignore-case does not match a prefix only", pattern: `{"eventName": [{"equals-ignore-case": "mod"}]}`, want: false},
		{name: "equals-ignore-case does not apply to a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"equals-ignore-case": "260"}]}}`, want: false},
	})
}

func TestWildcard(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "a star in the middle matches any run of characters", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "/usr/*.png"}]}}}}`, want: true},
		{name: "stars at both ends match a substring", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "*/lib/*"}]}}}}`, want: true},
		{name: "a wildcard whose literal parts differ does not match", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "/usr/*.jpg"}]}}}}`, want: false},
		{name: "a lone star matches the empty string", pattern: `{"dynamodb": {"NewImage": {"Empty": {"S": [{"wildcard": "*"}]}}}}`, want: true},
		{name: "an escaped star matches a literal star", pattern: `{"dynamodb": {"NewImage": {"Glob": {"S": [{"wildcard": "a\\*b"}]}}}}`, want: true},
		{name: "an escaped star does not match another character", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "/usr\\*"}]}}}}`, want: false},
		{name: "an escaped backslash matches a backslash", pattern: `{"dynamodb": {"NewImage": {"Win": {"S": [{"wildcard": "C:\\\\*"}]}}}}`, want: true},
		{name: "a wildcard without a star matches the whole string only", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "/usr/lib"}]}}}}`, want: false},
		{name: "a wildcard does not apply to a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"wildcard": "*"}]}}`, want: false},
	})
}

func TestWildcardSegments(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"ab*ba", "aba", false}, // prefix and suffix may not overlap
		{"ab*ba", "abba", true},
		{"*a*a*", "aa", true},
		{"*a*a*", "a", false},
		{"**", "", false}, // not compiled: consecutive stars are an error
	}
	for _, tc := range cases {
		m, err := compileWildcard("", tc.pattern)
		if tc.pattern == "**" {
			if err == nil {
				t.Errorf("compileWildcard(%q) = nil error, want one", tc.pattern)
			}
			continue
		}
		if err != nil {
			t.Fatalf("compileWildcard(%q): %v", tc.pattern, err)
		}
		if got := m.(wildcard).matches(tc.s); got != tc.want {
			t.Errorf("wildcard %q matches(%q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestNumeric(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "greater than matches a larger DynamoDB number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 5000]}]}}}}`, want: true},
		{name: "greater than does not match an equal number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 5842]}]}}}}`, want: false},
		{name: "greater or equal matches an equal number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">=", 5842]}]}}}}`, want: true},
		{name: "less than matches a smaller number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": ["<", 6000]}]}}}}`, want: true},
		{name: "less or equal does not match a larger number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": ["<=", 5841.999]}]}}}}`, want: false},
		{name: "equals matches the same value", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": ["=", 5842]}]}}}}`, want: true},
		{name: "equals matches the same value written otherwise", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": ["=", 5.842e3]}]}}}}`, want: true},
		{name: "equals does not match another value", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": ["=", 5843]}]}}}}`, want: false},
		{name: "a range matches a number inside it", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 5000, "<=", 5842]}]}}}}`, want: true},
		{name: "a range does not match a number at its open end", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">=", 5000, "<", 5842]}]}}}}`, want: false},
		{name: "a range does not match a number below it", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 6000, "<", 9000]}]}}}}`, want: false},
		{name: "numeric matches one element of a number set", pattern: `{"dynamodb": {"NewImage": {"Scores": {"NS": [{"numeric": ["<", 0]}]}}}}`, want: true},
		{name: "numeric matches no element of a number set", pattern: `{"dynamodb": {"NewImage": {"Scores": {"NS": [{"numeric": [">", 6000]}]}}}}`, want: false},
		{name: "numeric compares 38 digits exactly at equality", pattern: `{"dynamodb": {"NewImage": {"Big": {"N": [{"numeric": ["=", 12345678901234567890123456789012345678]}]}}}}`, want: true},
		{name: "numeric compares 38 digits exactly below", pattern: `{"dynamodb": {"NewImage": {"Big": {"N": [{"numeric": [">", 12345678901234567890123456789012345677]}]}}}}`, want: true},
		{name: "numeric compares 38 digits exactly above", pattern: `{"dynamodb": {"NewImage": {"Big": {"N": [{"numeric": ["<", 12345678901234567890123456789012345678]}]}}}}`, want: false},
		{name: "numeric reads a DynamoDB number with an exponent", pattern: `{"dynamodb": {"NewImage": {"Exp": {"N": [{"numeric": ["=", 1500]}]}}}}`, want: true},
		{name: "numeric does not apply to a string attribute", pattern: `{"dynamodb": {"Keys": {"UserId": {"S": [{"numeric": ["=", 101]}]}}}}`, want: false},
		{name: "numeric applies to a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"numeric": [">", 100, "<", 1000]}]}}`, want: true},
		{name: "numeric applies to the creation time", pattern: `{"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">=", 1700000000]}]}}`, want: true},
		{
			name: "numeric does not match a DynamoDB number that is not a number", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 0]}]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["TopScore"] = N("lots") }, want: false,
		},
		{
			name: "numeric on a missing attribute does not match", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 0]}]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { delete(r.Change.NewImage, "TopScore") }, want: false,
		},
	})
}

func TestExists(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "exists true matches a present leaf", pattern: `{"dynamodb": {"NewImage": {"GameTitle": {"S": [{"exists": true}]}}}}`, want: true},
		{name: "exists true does not match a missing leaf", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": [{"exists": true}]}}}}`, want: false},
		{name: "exists false matches a missing leaf", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": [{"exists": false}]}}}}`, want: true},
		{name: "exists false does not match a present leaf", pattern: `{"dynamodb": {"NewImage": {"GameTitle": {"S": [{"exists": false}]}}}}`, want: false},
		{name: "exists true never matches an attribute, which is an object", pattern: `{"dynamodb": {"NewImage": {"GameTitle": [{"exists": true}]}}}`, want: false},
		{name: "exists false always matches an attribute, which is an object", pattern: `{"dynamodb": {"NewImage": {"GameTitle": [{"exists": false}]}}}`, want: true},
		{name: "exists true matches an empty string", pattern: `{"dynamodb": {"NewImage": {"Empty": {"S": [{"exists": true}]}}}}`, want: true},
		{name: "exists true matches a NULL attribute's marker", pattern: `{"dynamodb": {"NewImage": {"Coach": {"NULL": [{"exists": true}]}}}}`, want: true},
		{name: "exists true matches a non-empty set", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": [{"exists": true}]}}}}`, want: true},
		{name: "exists false matches an empty set, which has no leaf", pattern: `{"dynamodb": {"NewImage": {"NoTags": {"SS": [{"exists": false}]}}}}`, want: true},
		{name: "exists false matches the identity of a record without one", pattern: `{"userIdentity": {"type": [{"exists": false}]}}`, want: true},
		{name: "exists true matches a leaf inside a list", pattern: `{"dynamodb": {"NewImage": {"History": {"L": {"M": {"Score": {"N": [{"exists": true}]}}}}}}}`, want: true},
		{name: "exists false or a value: either does", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": ["x", {"exists": false}]}}}}`, want: true},
		{
			name: "exists true matches the identity of a TTL deletion", pattern: `{"userIdentity": {"type": [{"exists": true}]}}`,
			edit: func(r *events.DynamoDBEventRecord) {
				r.UserIdentity = &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}
			},
			want: true,
		},
	})
}

func TestAnythingBut(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "anything-but a string matches another string", pattern: `{"eventName": [{"anything-but": "REMOVE"}]}`, want: true},
		{name: "anything-but a string does not match that string", pattern: `{"eventName": [{"anything-but": "MODIFY"}]}`, want: false},
		{name: "anything-but a list does not match a listed string", pattern: `{"eventName": [{"anything-but": ["INSERT", "MODIFY"]}]}`, want: false},
		{name: "anything-but a list matches an unlisted string", pattern: `{"eventName": [{"anything-but": ["INSERT", "REMOVE"]}]}`, want: true},
		{name: "anything-but numbers does not match a listed number", pattern: `{"dynamodb": {"SizeBytes": [{"anything-but": [100, 260]}]}}`, want: false},
		{name: "anything-but a number matches another number", pattern: `{"dynamodb": {"SizeBytes": [{"anything-but": 100}]}}`, want: true},
		{name: "anything-but a number matches a DynamoDB number, a string, as in Lambda", pattern: `{"dynamodb": {"NewImage": {"TopScore": {"N": [{"anything-but": 5842}]}}}}`, want: true},
		{name: "anything-but a string matches a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"anything-but": "260"}]}}`, want: true},
		{name: "anything-but does not match a missing field", pattern: `{"dynamodb": {"NewImage": {"Nope": {"S": [{"anything-but": "x"}]}}}}`, want: false},
		{name: "anything-but matches a set with an unlisted element", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": [{"anything-but": "arcade"}]}}}}`, want: true},
		{name: "anything-but does not match a set of listed elements only", pattern: `{"dynamodb": {"NewImage": {"Tags": {"SS": [{"anything-but": ["arcade", "space"]}]}}}}`, want: false},
		{name: "anything-but prefix matches a string without the prefix", pattern: `{"eventSourceARN": [{"anything-but": {"prefix": "arn:aws:dynamodb:us-west-2:"}}]}`, want: true},
		{name: "anything-but prefix does not match a string with the prefix", pattern: `{"eventSourceARN": [{"anything-but": {"prefix": "arn:aws:dynamodb:us-east-1:"}}]}`, want: false},
		{name: "anything-but prefix list excludes any listed prefix", pattern: `{"awsRegion": [{"anything-but": {"prefix": ["eu-", "us-"]}}]}`, want: false},
		{name: "anything-but suffix does not match a string with the suffix", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"anything-but": {"suffix": ".png"}}]}}}}`, want: false},
		{name: "anything-but suffix matches a string without the suffix", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"anything-but": {"suffix": ".jpg"}}]}}}}`, want: true},
		{name: "anything-but equals-ignore-case does not match another casing", pattern: `{"eventName": [{"anything-but": {"equals-ignore-case": "modify"}}]}`, want: false},
		{name: "anything-but equals-ignore-case list matches an unlisted string", pattern: `{"eventName": [{"anything-but": {"equals-ignore-case": ["insert", "remove"]}}]}`, want: true},
		{name: "anything-but wildcard does not match a matching string", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"anything-but": {"wildcard": "*/lib/*"}}]}}}}`, want: false},
		{name: "anything-but wildcard matches a string the wildcard misses", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"anything-but": {"wildcard": "*/bin/*"}}]}}}}`, want: true},
		{name: "anything-but prefix matches a JSON number", pattern: `{"dynamodb": {"SizeBytes": [{"anything-but": {"prefix": "2"}}]}}`, want: true},
	})
}

func TestCIDR(t *testing.T) {
	runMatchCases(t, []matchCase{
		{name: "cidr matches an address inside the prefix", pattern: `{"dynamodb": {"NewImage": {"IP": {"S": [{"cidr": "10.0.0.0/24"}]}}}}`, want: true},
		{name: "cidr does not match an address outside the prefix", pattern: `{"dynamodb": {"NewImage": {"IP": {"S": [{"cidr": "10.1.0.0/16"}]}}}}`, want: false},
		{name: "cidr matches an IPv6 address inside the prefix", pattern: `{"dynamodb": {"NewImage": {"IPv6": {"S": [{"cidr": "2001:db8::/32"}]}}}}`, want: true},
		{name: "cidr does not match a string that is not an address", pattern: `{"dynamodb": {"NewImage": {"Path": {"S": [{"cidr": "0.0.0.0/0"}]}}}}`, want: false},
	})
}

func TestSet(t *testing.T) {
	r := gameScore()
	insert, err := Compile([]byte(`{"eventName": ["INSERT"]}`))
	if err != nil {
		t.Fatal(err)
	}
	modify, err := Compile([]byte(`{"eventName": ["MODIFY"]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		set  Set
		want bool
	}{
		{"an empty set matches every record", nil, true},
		{"a set matches when one pattern does", Set{insert, modify}, true},
		{"a set does not match when no pattern does", Set{insert}, false},
		{"a nil pattern in a set matches nothing", Set{nil, insert}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.Match(&r); got != tc.want {
				t.Errorf("Set.Match() = %v, want %v", got, tc.want)
			}
		})
	}
	if Set(nil).Match(nil) != true || (Set{modify}).Match(nil) {
		t.Errorf("with a nil record: empty Set.Match = true and Set{modify}.Match = false expected")
	}
	if got := modify.String(); got != `{"eventName": ["MODIFY"]}` {
		t.Errorf("String() = %s, want the pattern as given", got)
	}
}

func TestUnusualRecords(t *testing.T) {
	runMatchCases(t, []matchCase{
		{
			name: "a zero attribute value neither panics nor matches a value", pattern: `{"dynamodb": {"NewImage": {"Zero": {"B": [{"prefix": ""}]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["Zero"] = events.DynamoDBAttributeValue{} }, want: false, noJSON: true,
		},
		{
			name: "a zero creation time counts as absent", pattern: `{"dynamodb": {"ApproximateCreationDateTime": [{"exists": false}]}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.ApproximateCreationDateTime = events.SecondsEpochTime{} }, want: true,
		},
		{
			name: "a nil list is null", pattern: `{"dynamodb": {"NewImage": {"History": {"L": [null]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["History"] = events.NewListAttribute(nil) }, want: true,
		},
		{
			name: "an empty list matches an object pattern as a missing value", pattern: `{"dynamodb": {"NewImage": {"History": {"L": {"S": [{"exists": false}]}}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["History"] = L() }, want: true,
		},
		{
			name: "an empty map has no leaf", pattern: `{"dynamodb": {"NewImage": {"Profile": {"M": [{"exists": true}]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["Profile"] = M(item{}) }, want: false,
		},
		{
			name: "empty Keys are absent", pattern: `{"dynamodb": {"Keys": {"UserId": {"S": [{"exists": false}]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.Keys = item{} }, want: true,
		},
		{
			name: "a binary set element matches its base64 text", pattern: `{"dynamodb": {"NewImage": {"Blobs": {"BS": ["AQID"]}}}}`,
			edit: func(r *events.DynamoDBEventRecord) {
				r.Change.NewImage["Blobs"] = events.NewBinarySetAttribute([][]byte{{9}, {1, 2, 3}})
			},
			want: true,
		},
	})
}

func TestEpochSeconds(t *testing.T) {
	cases := []struct {
		sec  int64
		nsec int
		want string
	}{
		{1700000000, 0, "1700000000"},
		{1700000000, 500000000, "1700000000.5"},
		{1700000000, 1, "1700000000.000000001"},
		{-2, 500000000, "-1.5"},
		{-1, 250000000, "-0.75"},
	}
	for _, tc := range cases {
		if got := epochSeconds(tc.sec, tc.nsec); got != tc.want {
			t.Errorf("epochSeconds(%d, %d) = %s, want %s", tc.sec, tc.nsec, got, tc.want)
		}
	}
}
