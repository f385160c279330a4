package filter

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// seedPatterns cover every operator, $or, repeated keys and a few broken patterns.
var seedPatterns = []string{
	`{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 1000]}]}}}}`,
	`{"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}`,
	`{"dynamodb": {"NewImage": {"AccountManager": {"S": ["Pat Candella"]}}}, "dynamodb": {"OldImage": {"AccountManager": {"S": ["Terry Whitlock"]}}}}`,
	`{"dynamodb": {"NewImage": {"Organizations": {"L": {"S": [{"exists": true}]}}}}}`,
	`{"dynamodb": {"NewImage": {"Organizations": [{"exists": false}]}}}`,
	`{"eventName": [null, "", true, 1.5e3, {"exactly": "x"}]}`,
	`{"eventSourceARN": [{"prefix": "arn:"}, {"suffix": {"equals-ignore-case": ".PNG"}}, {"prefix": {"equals-ignore-case": "ARN"}}]}`,
	`{"dynamodb": {"NewImage": {"Path": {"S": [{"wildcard": "*/lib/*"}, {"wildcard": "a\\*b\\\\*"}]}}}}`,
	`{"eventName": [{"anything-but": ["INSERT", "REMOVE"]}], "dynamodb": {"SizeBytes": [{"anything-but": [1, 2]}]}}`,
	`{"awsRegion": [{"anything-but": {"prefix": "us-"}}, {"anything-but": {"suffix": ["-1", "-2"]}}, {"anything-but": {"equals-ignore-case": "X"}}, {"anything-but": {"wildcard": "*x*"}}]}`,
	`{"dynamodb": {"NewImage": {"Scores": {"NS": [{"numeric": [">=", -1e3, "<", 12345678901234567890123456789012345678]}]}}}}`,
	`{"$or": [{"eventName": ["INSERT"]}, {"dynamodb": {"$or": [{"SizeBytes": [{"numeric": ["=", 26]}]}, {"Keys": {"k": {"B": ["AQID"]}}}]}}]}`,
	`{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}`,
	`{"dynamodb": {"NewImage": {"IP": {"S": [{"cidr": "10.0.0.0/8"}]}}, "ApproximateCreationDateTime": [{"numeric": [">", 0]}]}}`,
	`{"dynamodb": {"NewImage": {"History": {"L": {"M": {"Game": {"S": ["Pong"]}, "Score": {"N": ["10"]}}}}}}}`,
	`{"a": [{"numerc": [">", 0]}]}`,
	`{"a": [{"numeric": [">", 5, "<", 1]}]}`,
	`{"$or": [{"a": ["x"]}]}`,
	`{"a": [{"wildcard": "**"}]}`,
	`{"a": ["x"`,
	`[]`,
	`{}`,
}

func seedRecords(f *testing.F) [][]byte {
	f.Helper()
	ttl := customerRecord()
	ttl.EventName = "REMOVE"
	ttl.UserIdentity = &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}
	var out [][]byte
	for _, r := range []events.DynamoDBEventRecord{gameScore(), customerRecord(), ttl, {}} {
		b, err := json.Marshal(&r)
		if err != nil {
			f.Fatalf("marshal seed record: %v", err)
		}
		out = append(out, b)
	}
	out = append(out, []byte(`{"dynamodb": {"Keys": {"k": {"L": [{"M": {"a": {"NS": ["1", "x"]}}}, {"NULL": true}]}}}}`))
	return out
}

// FuzzCompile compiles arbitrary text: it must not panic, and what compiles must match the seed
// records without panicking, walking the struct exactly as it reads their JSON.
func FuzzCompile(f *testing.F) {
	for _, p := range seedPatterns {
		f.Add([]byte(p))
	}
	records := []events.DynamoDBEventRecord{gameScore(), customerRecord(), {}}
	docs := make([]map[string]any, len(records))
	for i := range records {
		doc, err := recordJSON(&records[i])
		if err != nil {
			f.Fatal(err)
		}
		docs[i] = doc
	}
	f.Fuzz(func(t *testing.T, pattern []byte) {
		p, err := Compile(pattern)
		if err != nil {
			patternError(t, err)
			return
		}
		if p.String() != string(pattern) {
			t.Fatalf("String() = %q, want the pattern %q", p.String(), pattern)
		}
		for i := range records {
			if got, want := p.Match(&records[i]), p.matchJSON(docs[i]); got != want {
				t.Fatalf("Compile(%s).Match(record %d) = %v, but its JSON gives %v", pattern, i, got, want)
			}
		}
	})
}

// FuzzMatch matches arbitrary patterns against arbitrary records (given as Lambda's JSON): no
// panic, and walking the struct must agree with reading the record's JSON.
func FuzzMatch(f *testing.F) {
	records := seedRecords(f)
	for i, p := range seedPatterns {
		f.Add([]byte(p), records[i%len(records)])
	}
	f.Fuzz(func(t *testing.T, pattern, record []byte) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		var r events.DynamoDBEventRecord
		if err := json.Unmarshal(record, &r); err != nil {
			return
		}
		// Keep the creation time to whole seconds that float64 holds exactly, so that the record's
		// JSON (float seconds) and the struct (exact seconds and nanoseconds) mean the same number.
		if at := r.Change.ApproximateCreationDateTime.Time; !at.IsZero() {
			if s := at.Unix(); -4e9 < s && s < 4e9 {
				r.Change.ApproximateCreationDateTime.Time = time.Unix(s, 0)
			} else {
				r.Change.ApproximateCreationDateTime.Time = time.Time{}
			}
		}
		got := p.Match(&r)
		doc, err := recordJSON(&r)
		if err != nil {
			return
		}
		if want := p.matchJSON(doc); got != want {
			t.Fatalf("Compile(%s).Match(%s) = %v, but its JSON gives %v", pattern, record, got, want)
		}
	})
}

// FuzzDecimal holds the decimal comparison to math/big on arbitrary numbers.
func FuzzDecimal(f *testing.F) {
	f.Add("1", "1.0")
	f.Add("-0.000", "0")
	f.Add("12345678901234567890123456789012345678", "1.2345678901234567890123456789012345677e37")
	f.Add("1e-130", "0.0000001")
	f.Fuzz(func(t *testing.T, a, b string) {
		da, okA := parseDecimal(a)
		db, okB := parseDecimal(b)
		if !okA || !okB {
			return
		}
		c := cmpDecimal(&da, &db)
		if c2 := cmpDecimal(&db, &da); c2 != -c {
			t.Fatalf("cmpDecimal(%q, %q) = %d but reversed = %d", a, b, c, c2)
		}
		if !smallExponent(a) || !smallExponent(b) || len(a) > 200 || len(b) > 200 {
			return // beyond what big.Rat parses quickly
		}
		ra, okRA := new(big.Rat).SetString(a)
		rb, okRB := new(big.Rat).SetString(b)
		if !okRA || !okRB {
			return // forms big.Rat refuses, such as "5." or "+.5"
		}
		if want := ra.Cmp(rb); c != want {
			t.Fatalf("cmpDecimal(%q, %q) = %d, want %d (math/big)", a, b, c, want)
		}
	})
}

// smallExponent reports whether s has no exponent, or one of at most three digits.
func smallExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return true
	}
	e := strings.TrimLeft(s[i+1:], "+-")
	return len(e) <= 3
}
