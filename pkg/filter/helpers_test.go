package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Attribute value shorthands.
var (
	S  = events.NewStringAttribute
	N  = events.NewNumberAttribute
	SS = func(s ...string) events.DynamoDBAttributeValue { return events.NewStringSetAttribute(s) }
	NS = func(s ...string) events.DynamoDBAttributeValue { return events.NewNumberSetAttribute(s) }
	L  = func(v ...events.DynamoDBAttributeValue) events.DynamoDBAttributeValue {
		return events.NewListAttribute(v)
	}
	M    = events.NewMapAttribute
	BOOL = events.NewBooleanAttribute
	NULL = events.NewNullAttribute
	B    = events.NewBinaryAttribute
)

type item = map[string]events.DynamoDBAttributeValue

// gameScore is a MODIFY record of the GameScores table, rich enough for every operator.
func gameScore() events.DynamoDBEventRecord {
	keys := item{"UserId": S("101"), "GameTitle": S("Galaxy Invaders")}
	return events.DynamoDBEventRecord{
		AWSRegion:      "us-east-1",
		EventID:        "c4ca4238a0b923820dcc509a6f75849b",
		EventName:      "MODIFY",
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: "arn:aws:dynamodb:us-east-1:123456789012:table/GameScores/stream/2024-01-01T00:00:00.000",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1700000000, 0)},
			Keys:                        keys,
			NewImage: item{
				"UserId": S("101"), "GameTitle": S("Galaxy Invaders"),
				"TopScore": N("5842"),
				"Big":      N("12345678901234567890123456789012345678"),
				"Exp":      N("1.5E+3"),
				"Tags":     SS("arcade", "space"),
				"Scores":   NS("10", "5842", "-3.5"),
				"NoTags":   events.NewStringSetAttribute([]string{}), // {"SS": []}
				"Active":   BOOL(true),
				"Coach":    NULL(),
				"Avatar":   B([]byte{1, 2, 3}),
				"Nothing":  M(nil), // {"M": null}
				"History": L(
					M(item{"Game": S("Pong"), "Score": N("10")}),
					M(item{"Game": S("Tetris"), "Score": N("99")}),
				),
				"Profile": M(item{"Country": S("FR"), "Level": N("12")}),
				"Empty":   S(""),
				"Email":   S("Alice@Example.COM"),
				"Path":    S("/usr/lib/x.png"),
				"Glob":    S("a*b"),
				"Win":     S(`C:\temp`),
				"IP":      S("10.0.0.7"),
				"IPv6":    S("2001:db8::1"),
				"Greek":   S("ΣΑΣ"),
			},
			OldImage:       item{"UserId": S("101"), "GameTitle": S("Galaxy Invaders"), "TopScore": N("4000")},
			SequenceNumber: "111",
			SizeBytes:      260,
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
}

// matchCase is one scenario: a pattern, a record (the gameScore record, changed by edit), and
// whether the pattern should match it.
type matchCase struct {
	name    string
	pattern string
	edit    func(r *events.DynamoDBEventRecord)
	want    bool
	noJSON  bool // the record has no JSON form (aws-lambda-go cannot marshal it)
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gameScore()
			if tc.edit != nil {
				tc.edit(&r)
			}
			if tc.noJSON {
				checkMatchStruct(t, tc.pattern, &r, tc.want)
				return
			}
			checkMatch(t, tc.pattern, &r, tc.want)
		})
	}
}

// checkMatch compiles pattern and checks that it matches r as wanted, both walking the struct
// and reading r's JSON (the record as Lambda's filter sees it).
func checkMatch(t *testing.T, pattern string, r *events.DynamoDBEventRecord, want bool) {
	t.Helper()
	p := checkMatchStruct(t, pattern, r, want)
	doc, err := recordJSON(r)
	if err != nil {
		t.Fatalf("record as JSON: %v", err)
	}
	if got := p.matchJSON(doc); got != want {
		t.Errorf("Compile(%s).matchJSON() = %v, want %v (JSON view disagrees)", pattern, got, want)
	}
}

// checkMatchStruct checks Match alone, for records without a JSON form.
func checkMatchStruct(t *testing.T, pattern string, r *events.DynamoDBEventRecord, want bool) *Pattern {
	t.Helper()
	p, err := Compile([]byte(pattern))
	if err != nil {
		t.Fatalf("Compile(%s) error: %v", pattern, err)
	}
	if got := p.Match(r); got != want {
		t.Errorf("Compile(%s).Match() = %v, want %v", pattern, got, want)
	}
	return p
}

// recordJSON is the record as Lambda's filter reads it: its JSON, decoded with UseNumber. A zero
// ApproximateCreationDateTime, which has no meaningful JSON, is left out, as Match does.
func recordJSON(r *events.DynamoDBEventRecord) (doc map[string]any, err error) {
	defer func() { // aws-lambda-go's MarshalJSON panics on a zero DynamoDBAttributeValue
		if p := recover(); p != nil {
			err = fmt.Errorf("marshal record: panic: %v", p)
		}
	}()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if r.Change.ApproximateCreationDateTime.IsZero() {
		if d, ok := doc["dynamodb"].(map[string]any); ok {
			delete(d, "ApproximateCreationDateTime")
		}
	}
	return doc, nil
}

// patternError returns err as a *PatternError.
func patternError(t *testing.T, err error) *PatternError {
	t.Helper()
	var pe *PatternError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *PatternError", err, err)
	}
	return pe
}
