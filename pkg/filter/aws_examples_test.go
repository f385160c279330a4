package filter

import (
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The examples of AWS's documentation of Lambda event filtering for DynamoDB
// (docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html and invocation-eventfiltering.html),
// with the record they are written for, and variants that must not match.

// customerRecord is the documentation's example record: a table keyed by CustomerName.
func customerRecord() events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventID:      "1",
		EventVersion: "1.0",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1678831218, 0)},
			Keys:                        item{"CustomerName": S("AnyCompany Industries")},
			NewImage: item{
				"AccountManager": S("Pat Candella"),
				"PaymentTerms":   S("60 days"),
				"CustomerName":   S("AnyCompany Industries"),
			},
			SequenceNumber: "111",
			SizeBytes:      26,
			StreamViewType: "NEW_IMAGE",
		},
	}
}

func withOldImage(old item) func(*events.DynamoDBEventRecord) {
	return func(r *events.DynamoDBEventRecord) {
		r.Change.OldImage = old
		r.Change.StreamViewType = "NEW_AND_OLD_IMAGES"
	}
}

func TestAWSDocumentedExamples(t *testing.T) {
	const (
		byKey          = `{ "dynamodb" : { "Keys" : { "CustomerName" : { "S" : [ "AnyCompany Industries" ] } } } }`
		byAttribute    = `{ "dynamodb" : { "NewImage" : { "AccountManager" : { "S" : [ "Pat Candella", "Shirley Rodriguez" ] } } } }`
		booleanAnd     = `{ "dynamodb" : { "NewImage" : { "AccountManager" : { "S" : [ "Pat Candella" ] } } } , "dynamodb" : { "OldImage" : { "AccountManager" : { "S" : [ "Terry Whitlock" ] } } } }`
		existsOnObject = `{ "dynamodb" : { "NewImage" : { "Organizations" : [ { "exists": true } ] } } }`
		existsOnLeaf   = `{ "dynamodb" : { "NewImage" : {"Organizations": {"L": {"S": [ {"exists": true } ] } } } } }`
		multiLevel     = `{ "dynamodb": { "Keys": { "Id": { "N": [ "101" ] } } } }`
		cdkInsert      = `{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"id": {"BOOL": [true]}}}}`
		ttlDeletes     = `{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}`
	)
	user := item{
		"UserID": S("12345"),
		"Name":   S("John Doe"),
		"Organizations": L(
			S("Sales"), S("Marketing"), S("Support"),
		),
	}
	cases := []struct {
		name    string
		pattern string
		record  func() events.DynamoDBEventRecord
		edit    func(*events.DynamoDBEventRecord)
		want    bool
	}{
		{name: "the key filter matches the example record", pattern: byKey, record: customerRecord, want: true},
		{
			name: "the key filter does not match another customer", pattern: byKey, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.Keys["CustomerName"] = S("Example Corp") }, want: false,
		},
		{name: "the attribute filter matches Pat Candella", pattern: byAttribute, record: customerRecord, want: true},
		{
			name: "the attribute filter matches Shirley Rodriguez", pattern: byAttribute, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["AccountManager"] = S("Shirley Rodriguez") }, want: true,
		},
		{
			name: "the attribute filter does not match another manager", pattern: byAttribute, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage["AccountManager"] = S("Mary Major") }, want: false,
		},
		{
			name: "the boolean AND filter, with its repeated dynamodb key, matches when both images match", pattern: booleanAnd, record: customerRecord,
			edit: withOldImage(item{"AccountManager": S("Terry Whitlock")}), want: true,
		},
		{name: "the boolean AND filter does not match a record without an old image", pattern: booleanAnd, record: customerRecord, want: false},
		{
			name: "the boolean AND filter does not match another old manager", pattern: booleanAnd, record: customerRecord,
			edit: withOldImage(item{"AccountManager": S("Pat Candella")}), want: false,
		},
		{
			name: "exists on an attribute, an intermediate node, never matches", pattern: existsOnObject, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage = user }, want: false,
		},
		{
			name: "exists on the attribute's leaves matches", pattern: existsOnLeaf, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.NewImage = user }, want: true,
		},
		{name: "exists on the attribute's leaves does not match an item without it", pattern: existsOnLeaf, record: customerRecord, want: false},
		{
			name: "the multi-level filter matches key Id 101", pattern: multiLevel, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.Keys = item{"Id": N("101")} }, want: true,
		},
		{
			name: "the multi-level filter does not match key Id 102", pattern: multiLevel, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.Change.Keys = item{"Id": N("102")} }, want: false,
		},
		{
			name: "the CDK example matches an insert whose id is true", pattern: cdkInsert, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.EventName = "INSERT"; r.Change.NewImage["id"] = BOOL(true) }, want: true,
		},
		{
			name: "the CDK example does not match a modify", pattern: cdkInsert, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.EventName = "MODIFY"; r.Change.NewImage["id"] = BOOL(true) }, want: false,
		},
		{
			name: "the TTL filter matches a deletion by the TTL service", pattern: ttlDeletes, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) {
				r.EventName = "REMOVE"
				r.UserIdentity = &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}
			},
			want: true,
		},
		{
			name: "the TTL filter does not match a deletion by a user", pattern: ttlDeletes, record: customerRecord,
			edit: func(r *events.DynamoDBEventRecord) { r.EventName = "REMOVE" }, want: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.record()
			if tc.edit != nil {
				tc.edit(&r)
			}
			checkMatch(t, tc.pattern, &r, tc.want)
		})
	}
}

// TestGameScoresTopScoreRises is the case: fire when an item is modified and its TopScore
// rises above 1000, which needs numeric on DynamoDB numbers (poller's extension).
func TestGameScoresTopScoreRises(t *testing.T) {
	const pattern = `{"eventName": ["MODIFY"], "dynamodb": {
		"NewImage": {"TopScore": {"N": [{"numeric": [">", 1000]}]}},
		"OldImage": {"TopScore": {"N": [{"numeric": ["<=", 1000]}]}}}}`
	cases := []struct {
		name      string
		eventName string
		old, new  string
		want      bool
	}{
		{"a modify that crosses 1000 matches", "MODIFY", "990", "1010", true},
		{"a modify from exactly 1000 to above matches", "MODIFY", "1000", "1000.5", true},
		{"a modify that stays above 1000 does not match", "MODIFY", "1200", "1300", false},
		{"a modify that stays below 1000 does not match", "MODIFY", "10", "999.999", false},
		{"a modify that falls below 1000 does not match", "MODIFY", "1200", "900", false},
		{"an insert above 1000 does not match", "INSERT", "990", "1010", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gameScore()
			r.EventName = tc.eventName
			r.Change.OldImage["TopScore"] = N(tc.old)
			r.Change.NewImage["TopScore"] = N(tc.new)
			checkMatch(t, pattern, &r, tc.want)
		})
	}
}
