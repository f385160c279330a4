package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoAPI is the part of the DynamoDB API the store calls; *dynamodb.Client satisfies it.
type DynamoAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoAPI = (*dynamodb.Client)(nil)

// maxListPages bounds List: at about 3,000 leases per 1 MB page it allows millions of leases, and it
// stops a pagination loop that never ends.
const maxListPages = 1000

// Store reads and writes the lease table. It is safe for concurrent use; its fields are immutable
// after New (tests in this package set pageLimit and now before use).
type Store struct {
	api   DynamoAPI
	table string
	// now is the wall clock for the informational updated_at and finished_at; never used to judge a lease.
	now func() time.Time
	// pageLimit is the Query page size of List; 0 means DynamoDB's 1 MB pages.
	pageLimit int32
	// tableWait bounds EnsureTable's wait for the table to become ACTIVE.
	tableWait time.Duration
}

// New returns a store for the lease table named table, reached through api.
func New(api DynamoAPI, table string) *Store {
	return &Store{api: api, table: table, now: time.Now, tableWait: 2 * time.Minute}
}

// isConditionFailed says whether err is a failed write condition, the normal way to lose a race.
func isConditionFailed(err error) bool {
	_, ok := errors.AsType[*types.ConditionalCheckFailedException](err)
	return ok
}

// List returns a pipeline's leases and worker heartbeats, read with a strongly consistent Query
// (calls: one Query per 1 MB page, about 3,000 leases).
func (s *Store) List(ctx context.Context, pipeline string) ([]Lease, []Worker, error) {
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(attrPipeline).Equal(expression.Value(pipeline))).
		Build()
	if err != nil {
		return nil, nil, fmt.Errorf("list leases of pipeline %s: %w", pipeline, err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ConsistentRead:            aws.Bool(true),
	}
	if s.pageLimit > 0 {
		in.Limit = aws.Int32(s.pageLimit)
	}
	var (
		leases  []Lease
		workers []Worker
		cursor  string
	)
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, nil, fmt.Errorf("list leases of pipeline %s: more than %d pages", pipeline, maxListPages)
		}
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("list leases of pipeline %s: %w", pipeline, err)
		}
		for _, av := range out.Items {
			key, _ := av[attrKey].(*types.AttributeValueMemberS)
			switch {
			case key == nil:
				return nil, nil, fmt.Errorf("list leases of pipeline %s: an item without a string key", pipeline)
			case strings.HasPrefix(key.Value, leasePrefix):
				l, err := decodeLease(av)
				if err != nil {
					return nil, nil, fmt.Errorf("list leases of pipeline %s: %w", pipeline, err)
				}
				leases = append(leases, l)
			case strings.HasPrefix(key.Value, workerPrefix):
				w, err := decodeWorker(av)
				if err != nil {
					return nil, nil, fmt.Errorf("list leases of pipeline %s: %w", pipeline, err)
				}
				workers = append(workers, w)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return leases, workers, nil
		}
		next, _ := out.LastEvaluatedKey[attrKey].(*types.AttributeValueMemberS)
		if next == nil || next.Value == cursor {
			return nil, nil, fmt.Errorf("list leases of pipeline %s: repeated or missing page cursor after %q", pipeline, cursor)
		}
		cursor = next.Value
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Create writes l as a new free lease with counter 1, and says whether it did: an existing lease is
// left as it is and gives (false, nil), so Create is idempotent. Pipeline and ShardID are required;
// StreamARN, Parents, StartAt, StartTime (the time of an AT_TIMESTAMP start), Checkpoint (a seed, e.g. imported from another consumer) and Finished
// (a shard to skip, e.g. closed before a LATEST start) are stored; Owner, Counter and the times are
// ignored. Calls: one PutItem.
func (s *Store) Create(ctx context.Context, l Lease) (bool, error) {
	if l.Pipeline == "" || l.ShardID == "" {
		return false, fmt.Errorf("create lease %q of pipeline %q: pipeline and shard ID are required", l.ShardID, l.Pipeline)
	}
	if l.Checkpoint != "" && !validSeq(l.Checkpoint) {
		return false, fmt.Errorf("create lease for shard %s of pipeline %s: checkpoint %q: %w", l.ShardID, l.Pipeline, l.Checkpoint, ErrBadSequence)
	}
	item := leaseItem{
		Pipeline:   l.Pipeline,
		Key:        leaseKey(l.ShardID),
		ShardID:    l.ShardID,
		StreamARN:  l.StreamARN,
		Parents:    l.Parents,
		Counter:    1,
		Checkpoint: l.Checkpoint,
		Finished:   l.Finished,
		StartAt:    l.StartAt,
		UpdatedAt:  stamp(s.now()),
	}
	if !l.StartTime.IsZero() {
		item.StartTime = stamp(l.StartTime)
	}
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return false, fmt.Errorf("create lease for shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	expr, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name(attrPipeline))).
		Build()
	if err != nil {
		return false, fmt.Errorf("create lease for shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     av,
		ConditionExpression:      expr.Condition(),
		ExpressionAttributeNames: expr.Names(),
	})
	switch {
	case isConditionFailed(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create lease for shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	return true, nil
}

// Take takes lease l for owner, on the condition that its counter is still l.Counter, the counter the
// caller observed (in List): a free lease, or one whose counter the caller saw stand still for
// lease_duration (Tracker). It fails with (nil, false, nil) when someone wrote the lease since, or the
// lease is finished or gone. The returned Held resumes from the lease's checkpoint. A request to hand
// the lease over (wanted_by) is cleared: it was addressed to the previous owner. A lease with an
// OwnerBeat is taken over the owner's heartbeat as well (see takeOverBeat). Calls: one UpdateItem, or
// one TransactWriteItems of two updates with an OwnerBeat.
func (s *Store) Take(ctx context.Context, l Lease, owner string) (*Held, bool, error) {
	if owner == "" {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: empty owner", l.ShardID, l.Pipeline)
	}
	now := stamp(s.now())
	upd := expression.Set(expression.Name(attrOwner), expression.Value(owner)).
		Set(expression.Name(attrUpdatedAt), expression.Value(now)).
		Add(expression.Name(attrCounter), expression.Value(1))
	if l.Owner != "" && l.Owner != owner {
		upd = upd.Add(expression.Name(attrTakeovers), expression.Value(1))
	}
	upd = upd.Remove(expression.Name(attrWantedBy))
	cond := expression.Name(attrCounter).Equal(expression.Value(l.Counter)).And(expression.Or(
		expression.AttributeNotExists(expression.Name(attrFinished)),
		expression.Name(attrFinished).Equal(expression.Value(false)),
	))
	if l.OwnerBeat > 0 && l.Owner != "" && l.Owner != owner {
		return s.takeOverBeat(ctx, l, owner, upd, cond, now)
	}
	attrs, ok, err := s.update(ctx, itemKey(l.Pipeline, leaseKey(l.ShardID)), upd, cond)
	if err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	if !ok {
		// The SDK retries a request whose answer was lost; if the first attempt landed, the retry fails
		// its condition on our own write. Our write is recognised by owner, counter and its exact
		// updated_at.
		got, derr := decodeLease(attrs)
		if attrs == nil || derr != nil || got.Owner != owner || got.Counter != l.Counter+1 || stamp(got.UpdatedAt) != now {
			return nil, false, nil
		}
	}
	got, err := decodeLease(attrs)
	if err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	return newHeld(s, got, owner), true, nil
}

// takeOverBeat takes l, whose owner vouches for its leases with its heartbeat, in one transaction of
// two conditional updates: the lease, as Take writes it (upd, cond: its counter is still the one
// observed), and the owner's heartbeat item, takes + 1 on the condition that its counter is still
// l.OwnerBeat, the one the caller saw stand still for lease_duration. Either both land or neither: a
// heartbeat since keeps the lease its owner's, and an owner that wakes up after the take finds Takes
// moved at its next heartbeat (Store.Beat), which then vouches for none of its leases until a write
// of each lease's own confirms it. The SDK makes the call idempotent (ClientRequestToken), so a
// retry of a transaction that landed succeeds. (nil, false, nil) when a condition failed or another
// write raced it.
func (s *Store) takeOverBeat(ctx context.Context, l Lease, owner string, upd expression.UpdateBuilder, cond expression.ConditionBuilder, now string) (*Held, bool, error) {
	lease, err := transactUpdate(s.table, itemKey(l.Pipeline, leaseKey(l.ShardID)), upd, cond)
	if err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	beat, err := transactUpdate(s.table, itemKey(l.Pipeline, workerKey(l.Owner)),
		expression.Add(expression.Name(attrTakes), expression.Value(1)),
		expression.Name(attrCounter).Equal(expression.Value(l.OwnerBeat)))
	if err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Update: lease}, {Update: beat}}})
	if lostRace(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s over the heartbeat of worker %s: %w", l.ShardID, l.Pipeline, l.Owner, err)
	}
	// The condition held: the item was l but for wanted_by (Want leaves the counter), and the update
	// made it this.
	got := l
	got.Owner, got.Counter, got.WantedBy, got.OwnerBeat = owner, l.Counter+1, "", 0
	got.Takeovers++
	if got.UpdatedAt, err = parseStamp(attrUpdatedAt, now); err != nil {
		return nil, false, fmt.Errorf("take shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	return newHeld(s, got, owner), true, nil
}

// transactUpdate is a conditional update of the item at key of table, for TransactWriteItems.
func transactUpdate(table string, key map[string]types.AttributeValue, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*types.Update, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	return &types.Update{
		TableName:                 aws.String(table),
		Key:                       key,
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}, nil
}

// lostRace says whether err is a transaction canceled only because a condition failed or another
// transaction wrote one of its items meanwhile: the normal way to lose a race, as a failed condition
// is for a single write.
func lostRace(err error) bool {
	tce, ok := errors.AsType[*types.TransactionCanceledException](err)
	if !ok {
		return false
	}
	lost := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "", "None":
		case "ConditionalCheckFailed", "TransactionConflict":
			lost = true
		default:
			return false
		}
	}
	return lost
}

// Want asks the owner of l to hand the lease over to worker by: a cooperative steal. It sets wanted_by =
// by on the condition that the lease is still owned by l.Owner, is not finished, and its wanted_by is
// still l.WantedBy (as observed; "" for none). The owner sees the request in its next List, finishes
// its batches in flight, checkpoints and calls Held.Handoff; no record is delivered twice.
//
// Want is the one lease write that does not bump the counter: a request changes neither ownership
// nor the checkpoint, so it neither fails the holder's fenced writes (Held) nor looks like a renewal to
// observers judging expiry (Tracker). (false, nil) when the condition failed. Calls: one UpdateItem.
func (s *Store) Want(ctx context.Context, l Lease, by string) (bool, error) {
	if by == "" || l.Owner == "" {
		return false, fmt.Errorf("want shard %s of pipeline %s: owner and requester are required", l.ShardID, l.Pipeline)
	}
	wanted := expression.AttributeNotExists(expression.Name(attrWantedBy))
	if l.WantedBy != "" {
		wanted = expression.Name(attrWantedBy).Equal(expression.Value(l.WantedBy))
	}
	cond := expression.Name(attrOwner).Equal(expression.Value(l.Owner)).
		And(expression.Name(attrFinished).Equal(expression.Value(false))).
		And(wanted)
	_, ok, err := s.update(ctx, itemKey(l.Pipeline, leaseKey(l.ShardID)), expression.Set(expression.Name(attrWantedBy), expression.Value(by)), cond)
	if err != nil {
		return false, fmt.Errorf("want shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	return ok, nil
}

// Delete removes a finished lease, on the condition that its counter is still l.Counter; (false, nil)
// when it is not finished or was written since. The caller deletes a lease only once the shard's
// children are running and the stream's 24-hour retention has passed since FinishedAt. The shard's
// tumbling window item, if any, is deleted with it. Calls: two DeleteItem.
func (s *Store) Delete(ctx context.Context, l Lease) (bool, error) {
	cond := expression.Name(attrCounter).Equal(expression.Value(l.Counter)).
		And(expression.Name(attrFinished).Equal(expression.Value(true)))
	deleted, err := s.deleteIf(ctx, itemKey(l.Pipeline, leaseKey(l.ShardID)), cond)
	if err != nil {
		return false, fmt.Errorf("delete lease of shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	if deleted {
		// The shard's tumbling window item (if any) goes with its lease.
		if _, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(l.Pipeline, windowKey(l.ShardID))}); err != nil {
			return true, fmt.Errorf("delete window of shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
		}
	}
	return deleted, nil
}

// deleteIf deletes the item at key if cond holds; (false, nil) when it does not.
func (s *Store) deleteIf(ctx context.Context, key map[string]types.AttributeValue, cond expression.ConditionBuilder) (bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return false, err
	}
	_, err = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	switch {
	case isConditionFailed(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
