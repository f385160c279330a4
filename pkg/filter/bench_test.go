package filter

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// typicalPattern is the trigger: modifications whose TopScore rose above 1000.
const typicalPattern = `{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"TopScore": {"N": [{"numeric": [">", 1000]}]}}}}`

// tenFieldsPattern names ten fields, with a mix of operators, all of which match gameScore():
// every field is evaluated, the worst case for a matching record.
const tenFieldsPattern = `{
	"eventName": ["INSERT", "MODIFY"],
	"awsRegion": [{"prefix": "us-"}],
	"eventSource": ["aws:dynamodb"],
	"dynamodb": {
		"Keys": {"UserId": {"S": ["101"]}},
		"NewImage": {
			"GameTitle": {"S": [{"equals-ignore-case": "galaxy invaders"}]},
			"TopScore": {"N": [{"numeric": [">", 1000, "<=", 100000]}]},
			"Tags": {"SS": [{"anything-but": ["rpg", "puzzle"]}]},
			"Active": {"BOOL": [true]},
			"Profile": {"M": {"Country": {"S": [{"wildcard": "F*"}]}}}
		},
		"OldImage": {"TopScore": {"N": [{"exists": true}]}}
	}
}`

func benchmarkMatch(b *testing.B, pattern string, want bool) {
	p, err := Compile([]byte(pattern))
	if err != nil {
		b.Fatal(err)
	}
	r := gameScore()
	if got := p.Match(&r); got != want {
		b.Fatalf("Match() = %v, want %v", got, want)
	}
	b.ReportAllocs()
	evals := 0
	for b.Loop() {
		p.Match(&r)
		evals++
	}
	b.ReportMetric(float64(evals)/b.Elapsed().Seconds(), "evals/s")
}

func BenchmarkMatchTypical(b *testing.B) { benchmarkMatch(b, typicalPattern, true) }

func BenchmarkMatchTenFields(b *testing.B) { benchmarkMatch(b, tenFieldsPattern, true) }

// BenchmarkMatchTypicalRejected is the typical pattern on an INSERT: rejected at the first field.
func BenchmarkMatchTypicalRejected(b *testing.B) {
	p, err := Compile([]byte(typicalPattern))
	if err != nil {
		b.Fatal(err)
	}
	r := gameScore()
	r.EventName = string(events.DynamoDBOperationTypeInsert)
	b.ReportAllocs()
	evals := 0
	for b.Loop() {
		p.Match(&r)
		evals++
	}
	b.ReportMetric(float64(evals)/b.Elapsed().Seconds(), "evals/s")
}

func BenchmarkCompileTenFields(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile([]byte(tenFieldsPattern)); err != nil {
			b.Fatal(err)
		}
	}
}
