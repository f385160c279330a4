package checkpoint

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestEnsureTable(t *testing.T) {
	t.Parallel()
	c := client(t)
	// createWith creates a table with the given keys (name -> type; first is the hash key).
	createWith := func(t *testing.T, name string, keys ...[2]string) {
		in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
		for i, k := range keys {
			kt := types.KeyTypeHash
			if i > 0 {
				kt = types.KeyTypeRange
			}
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k[0]), AttributeType: types.ScalarAttributeType(k[1])})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k[0]), KeyType: kt})
		}
		if _, err := c.CreateTable(t.Context(), in); err != nil {
			t.Fatalf("CreateTable() = %v", err)
		}
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, table string)
		create  bool
		wantErr error
	}{
		{name: "a missing table is created when create is true", create: true},
		{name: "a missing table is an error when create is false", wantErr: ErrNoTable},
		{
			name: "an existing lease table is accepted without create",
			prepare: func(t *testing.T, table string) {
				createWith(t, table, [2]string{"pipeline", "S"}, [2]string{"key", "S"})
			},
		},
		{
			name:    "a table with only a hash key is rejected",
			prepare: func(t *testing.T, table string) { createWith(t, table, [2]string{"pipeline", "S"}) },
			create:  true,
			wantErr: ErrTableSchema,
		},
		{
			name: "a table with other key names is rejected",
			prepare: func(t *testing.T, table string) {
				createWith(t, table, [2]string{"leaseKey", "S"}, [2]string{"key", "S"})
			},
			wantErr: ErrTableSchema,
		},
		{
			name: "a table whose range key is a number is rejected",
			prepare: func(t *testing.T, table string) {
				createWith(t, table, [2]string{"pipeline", "S"}, [2]string{"key", "N"})
			},
			wantErr: ErrTableSchema,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := tableName(t)
			if tt.prepare != nil {
				tt.prepare(t, table)
			}
			s := New(c, table)
			err := s.EnsureTable(t.Context(), tt.create)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("EnsureTable(%v) = %v, want %v", tt.create, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			// Once there, the table is accepted as it is, and usable.
			if err := s.EnsureTable(t.Context(), false); err != nil {
				t.Fatalf("second EnsureTable(false) = %v, want nil", err)
			}
			if ok, err := s.Create(t.Context(), Lease{Pipeline: pipe, ShardID: "s"}); !ok || err != nil {
				t.Fatalf("Create() on the table = %v, %v", ok, err)
			}
			out, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
			if err != nil || out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
				t.Fatalf("DescribeTable() = %+v, %v, want on-demand billing", out, err)
			}
		})
	}
}

// TestEnsureTableRace: replicas starting together all create the table, and all succeed.
func TestEnsureTableRace(t *testing.T) {
	t.Parallel()
	c := client(t)
	table := tableName(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := New(c, table).EnsureTable(context.WithoutCancel(t.Context()), true); err != nil {
				t.Errorf("EnsureTable() = %v, want nil", err)
			}
		})
	}
	wg.Wait()
}
