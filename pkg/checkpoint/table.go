package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrNoTable is returned by EnsureTable when the lease table is missing and may not be created.
var ErrNoTable = errors.New("lease table does not exist")

// ErrTableSchema is returned by EnsureTable when the table exists with another key schema.
var ErrTableSchema = errors.New("lease table has another key schema")

// EnsureTable checks that the lease table exists, is usable and has the lease table's key schema. When
// it is missing and create is true, it creates it (on-demand billing) and waits, at most two minutes
// and as long as ctx allows, until it is ACTIVE; another replica creating it at the same time is fine.
// Calls: one DescribeTable; when creating, one CreateTable and DescribeTable polls until ACTIVE.
func (s *Store) EnsureTable(ctx context.Context, create bool) error {
	out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	_, missing := errors.AsType[*types.ResourceNotFoundException](err)
	switch {
	case missing && !create:
		return fmt.Errorf("lease table %s: %w (set leases.create_table: true, or create it)", s.table, ErrNoTable)
	case missing:
		if err := s.createTable(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("describe lease table %s: %w", s.table, err)
	default:
		if err := checkTable(out.Table); err != nil {
			return fmt.Errorf("lease table %s: %w", s.table, err)
		}
		switch out.Table.TableStatus {
		case types.TableStatusActive, types.TableStatusUpdating:
			return nil
		case types.TableStatusCreating:
		default:
			return fmt.Errorf("lease table %s is %s", s.table, out.Table.TableStatus)
		}
	}
	w := dynamodb.NewTableExistsWaiter(s.api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 500*time.Millisecond, 5*time.Second
	})
	desc, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, s.tableWait)
	if err != nil {
		return fmt.Errorf("wait for lease table %s to be active: %w", s.table, err)
	}
	// Another replica may have created it: check what we got.
	if err := checkTable(desc.Table); err != nil {
		return fmt.Errorf("lease table %s: %w", s.table, err)
	}
	return nil
}

func (s *Store) createTable(ctx context.Context) error {
	_, err := s.api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(s.table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPipeline), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPipeline), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeRange},
		},
	})
	if _, inUse := errors.AsType[*types.ResourceInUseException](err); err != nil && !inUse {
		return fmt.Errorf("create lease table %s: %w", s.table, err)
	}
	return nil
}

// checkTable checks the key schema: pipeline (S) hash key and key (S) range key, nothing else.
func checkTable(t *types.TableDescription) error {
	if t == nil {
		return fmt.Errorf("%w: no table description", ErrTableSchema)
	}
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, d := range t.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	var hash, rng string
	for _, k := range t.KeySchema {
		name := aws.ToString(k.AttributeName)
		desc := fmt.Sprintf("%s (%s)", name, attrTypes[name])
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = desc
		case types.KeyTypeRange:
			rng = desc
		}
	}
	want := fmt.Sprintf("%s (S)", attrKey)
	if hash != fmt.Sprintf("%s (S)", attrPipeline) || rng != want {
		return fmt.Errorf("%w: want hash key pipeline (S) and range key key (S), got hash key %s and range key %s",
			ErrTableSchema, orNone(hash), orNone(rng))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
