package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// decisionKey is the key of a pipeline's first-run decision item.
const decisionKey = "start"

// Decision is a pipeline's first-run decision, taken once for the whole fleet: which position the
// pipeline started from, and whether the leases of the first listing are all created. Until Done, only
// Owner, the worker that created the item (or took it over from one that stalled), creates leases;
// every other worker waits, so two replicas starting together never decide differently.
type Decision struct {
	Pipeline string
	// Position is the starting_position of the deciding worker: "TRIM_HORIZON", "LATEST" or
	// "AT_TIMESTAMP", with Time (its starting_position_timestamp) for AT_TIMESTAMP.
	Position string
	Time     time.Time
	// Owner is the deciding worker; "" once Done.
	Owner string
	// Counter is bumped by every write of the item, like a lease's: the deciding worker's token.
	Counter int64
	// Done says every shard of the decision's listing has its lease.
	Done bool
}

type decisionItem struct {
	Pipeline string `dynamodbav:"pipeline"`
	Key      string `dynamodbav:"key"`
	Position string `dynamodbav:"position"`
	Time     string `dynamodbav:"start_time,omitempty"`
	Owner    string `dynamodbav:"owner,omitempty"`
	Counter  int64  `dynamodbav:"counter"`
	Done     bool   `dynamodbav:"done"`
}

func decodeDecision(av map[string]types.AttributeValue) (Decision, error) {
	var it decisionItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Decision{}, fmt.Errorf("decode decision item: %w", err)
	}
	d := Decision{Pipeline: it.Pipeline, Position: it.Position, Owner: it.Owner, Counter: it.Counter, Done: it.Done}
	t, err := parseStamp(attrStartTime, it.Time)
	if err != nil {
		return Decision{}, fmt.Errorf("decode decision item: %w", err)
	}
	d.Time = t
	return d, nil
}

// Decide creates the pipeline's decision item from d (counter 1; Owner is the deciding worker, or ""
// with Done for a pipeline whose leases predate decision items) if there is none yet, and returns the
// item as it is now: d as written and true, or the existing item and false. Calls: one PutItem.
func (s *Store) Decide(ctx context.Context, d Decision) (Decision, bool, error) {
	if d.Pipeline == "" || d.Position == "" || (d.Owner == "") != d.Done {
		return Decision{}, false, fmt.Errorf("decide the start of pipeline %q: pipeline, position and either an owner or done are required", d.Pipeline)
	}
	d.Counter = 1
	it := decisionItem{Pipeline: d.Pipeline, Key: decisionKey, Position: d.Position, Owner: d.Owner, Counter: 1, Done: d.Done}
	if !d.Time.IsZero() {
		d.Time = d.Time.UTC()
		it.Time = stamp(d.Time)
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return Decision{}, false, fmt.Errorf("decide the start of pipeline %s: %w", d.Pipeline, err)
	}
	expr, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(attrPipeline))).Build()
	if err != nil {
		return Decision{}, false, fmt.Errorf("decide the start of pipeline %s: %w", d.Pipeline, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                av,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return d, true, nil
	}
	ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err)
	if !ok || ccf.Item == nil {
		return Decision{}, false, fmt.Errorf("decide the start of pipeline %s: %w", d.Pipeline, err)
	}
	got, err := decodeDecision(ccf.Item)
	if err != nil {
		return Decision{}, false, fmt.Errorf("decide the start of pipeline %s: %w", d.Pipeline, err)
	}
	// An SDK retry of our own landed put fails on our own item: it is ours all the same.
	return got, got.Pipeline == d.Pipeline && got.Position == d.Position && got.Time.Equal(d.Time) &&
		got.Owner == d.Owner && got.Counter == d.Counter && got.Done == d.Done, nil
}

// TakeDecision makes owner the deciding worker of d, on the condition that the item's counter is still
// d.Counter and it is not done: for a worker that saw the deciding worker's counter stand still for
// lease_duration. (the new item, true) or (_, false) when someone wrote it since. Calls: one UpdateItem.
func (s *Store) TakeDecision(ctx context.Context, d Decision, owner string) (Decision, bool, error) {
	upd := expression.Set(expression.Name(attrOwner), expression.Value(owner))
	return s.updateDecision(ctx, d, upd, expression.Name("done").Equal(expression.Value(false)), "take the start decision")
}

// DecisionDone marks d done: every shard of its listing has a lease. Conditional on owner = d.Owner
// and counter = d.Counter; (_, false) when another worker took the decision over. Calls: one
// UpdateItem.
func (s *Store) DecisionDone(ctx context.Context, d Decision) (Decision, bool, error) {
	upd := expression.Set(expression.Name("done"), expression.Value(true)).Remove(expression.Name(attrOwner))
	return s.updateDecision(ctx, d, upd, expression.Name(attrOwner).Equal(expression.Value(d.Owner)), "complete the start decision")
}

// RenewDecision bumps d's counter, so that others see the deciding worker alive while it creates many
// leases. Conditional like DecisionDone. Calls: one UpdateItem.
func (s *Store) RenewDecision(ctx context.Context, d Decision) (Decision, bool, error) {
	upd := expression.Set(expression.Name(attrOwner), expression.Value(d.Owner))
	return s.updateDecision(ctx, d, upd, expression.Name(attrOwner).Equal(expression.Value(d.Owner)), "renew the start decision")
}

func (s *Store) updateDecision(ctx context.Context, d Decision, upd expression.UpdateBuilder, cond expression.ConditionBuilder, op string) (Decision, bool, error) {
	upd = upd.Add(expression.Name(attrCounter), expression.Value(1))
	cond = cond.And(expression.Name(attrCounter).Equal(expression.Value(d.Counter)))
	item, ok, err := s.update(ctx, itemKey(d.Pipeline, decisionKey), upd, cond)
	switch {
	case err != nil:
		return Decision{}, false, fmt.Errorf("%s of pipeline %s: %w", op, d.Pipeline, err)
	case !ok:
		return Decision{}, false, nil
	}
	got, err := decodeDecision(item)
	if err != nil {
		return Decision{}, false, fmt.Errorf("%s of pipeline %s: %w", op, d.Pipeline, err)
	}
	return got, true, nil
}
