package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

type (
	dynamodbAttr = types.AttributeDefinition
	dynamodbKey  = types.KeySchemaElement
)

func TestFaketimeEnv(t *testing.T) {
	tests := []struct {
		name       string
		wrapper    []string
		wantDirect bool
		wantEnv    string
		wantErr    string
	}{
		{name: "no wrapper runs java directly", wrapper: nil, wantDirect: true},
		{name: "faketime -m -f becomes the multi-threaded library and FAKETIME", wrapper: []string{"faketime", "-m", "-f", "+0 x200"}, wantDirect: true, wantEnv: "FAKETIME=+0 x200"},
		{name: "faketime -f alone uses the plain library", wrapper: []string{"faketime", "-f", "-10m"}, wantDirect: true, wantEnv: "libfaketime.so.1"},
		{name: "another wrapper is run as given", wrapper: []string{"nice", "-n", "5"}, wantDirect: false},
		{name: "faketime without -f is refused", wrapper: []string{"faketime", "-m"}, wantErr: "-f SPEC is required"},
		{name: "an unknown faketime flag is refused", wrapper: []string{"faketime", "--exclude-monotonic", "-f", "x"}, wantErr: "unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, direct, err := faketimeEnv(tt.wrapper)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("faketimeEnv(%q) error = %v, want %q", tt.wrapper, err, tt.wantErr)
				}
				return
			}
			if err != nil && strings.Contains(err.Error(), "not installed") {
				missing(t, "libfaketime", err.Error())
			}
			if err != nil || direct != tt.wantDirect || !strings.Contains(strings.Join(env, " "), tt.wantEnv) {
				t.Errorf("faketimeEnv(%q) = %q, %v, %v, want %q in env, direct %v", tt.wrapper, env, direct, err, tt.wantEnv, tt.wantDirect)
			}
		})
	}
}

// Under faketime 10 minutes behind, the emulator (a direct child, so Stop kills it) stamps tables
// with its fake clock.
func TestDynamoDBLocalUnderFaketime(t *testing.T) {
	endpoint := NewDynamoDBLocal(t, "faketime", "-f", "-10m")
	db := dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ctx := context.Background()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("Faked"),
		AttributeDefinitions: []dynamodbAttr{{AttributeName: aws.String("pk"), AttributeType: "S"}},
		KeySchema:            []dynamodbKey{{AttributeName: aws.String("pk"), KeyType: "HASH"}},
		BillingMode:          "PAY_PER_REQUEST",
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("Faked")})
	if err != nil {
		t.Fatal(err)
	}
	if lag := time.Since(*out.Table.CreationDateTime); lag < 9*time.Minute || lag > 11*time.Minute {
		t.Errorf("table created %s ago by the emulator's clock, want about 10 minutes (faketime not applied?)", lag)
	}
}
