package checkpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// controlKey is the key of a pipeline's control item: the operator's switches (poller pause and
// resume), read by every replica at each lease round.
const controlKey = "control"

// attrPaused is the control item's switch; attrIteratorAge a lease's reported iterator age.
const (
	attrPaused      = "paused"
	attrIteratorAge = "iterator_age"
)

// Control is a pipeline's control item: what the operator asked of every replica. The zero value
// (no item) is a running pipeline.
type Control struct {
	Pipeline string
	// Paused: no replica reads the pipeline's shards; each keeps (and renews) its leases.
	Paused bool
	// Counter is bumped by every write; UpdatedAt is the writer's wall clock (informational).
	Counter   int64
	UpdatedAt time.Time
}

type controlItem struct {
	Pipeline  string `dynamodbav:"pipeline"`
	Key       string `dynamodbav:"key"`
	Paused    bool   `dynamodbav:"paused"`
	Counter   int64  `dynamodbav:"counter"`
	UpdatedAt string `dynamodbav:"updated_at,omitempty"`
}

// Control reads the pipeline's control item (strongly consistent); a pipeline without one is not
// paused. Calls: one GetItem.
func (s *Store) Control(ctx context.Context, pipeline string) (Control, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            itemKey(pipeline, controlKey),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Control{}, fmt.Errorf("read the control item of pipeline %s: %w", pipeline, err)
	}
	if len(out.Item) == 0 {
		return Control{Pipeline: pipeline}, nil
	}
	var it controlItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Control{}, fmt.Errorf("decode the control item of pipeline %s: %w", pipeline, err)
	}
	c := Control{Pipeline: pipeline, Paused: it.Paused, Counter: it.Counter}
	if c.UpdatedAt, err = parseStamp(attrUpdatedAt, it.UpdatedAt); err != nil {
		return Control{}, fmt.Errorf("decode the control item of pipeline %s: %w", pipeline, err)
	}
	return c, nil
}

// SetPaused writes the pipeline's paused switch, creating the control item on first use, and returns
// the item as written. Unconditional: the last operator's word counts. Calls: one UpdateItem.
func (s *Store) SetPaused(ctx context.Context, pipeline string, paused bool) (Control, error) {
	upd := expression.Set(expression.Name(attrPaused), expression.Value(paused)).
		Set(expression.Name(attrUpdatedAt), expression.Value(stamp(s.now()))).
		Add(expression.Name(attrCounter), expression.Value(1))
	item, _, err := s.update(ctx, itemKey(pipeline, controlKey), upd, expression.ConditionBuilder{})
	if err != nil {
		return Control{}, fmt.Errorf("set paused=%t on pipeline %s: %w", paused, pipeline, err)
	}
	var it controlItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return Control{}, fmt.Errorf("decode the control item of pipeline %s: %w", pipeline, err)
	}
	return Control{Pipeline: pipeline, Paused: it.Paused, Counter: it.Counter}, nil
}

// StartAtTime is Lease.StartAt of a lease that starts at its first record created at or after
// StartTime (starting_position AT_TIMESTAMP, or poller reset --to TIME): read from the horizon, the
// records created before it skipped.
const StartAtTime = "AT_TIMESTAMP"

// Reset moves lease l back (or forward) to a new start, on the condition that its counter is still
// l.Counter (as the caller listed it), and returns the lease as written (false: it was written since;
// list and try again). startAt is "" (TRIM_HORIZON), StartLatest or StartAtTime (with at). The
// checkpoint, the pinned start, the idle iterator and the finished flag are cleared, and the lease is
// freed: its owner (which keeps it while the pipeline is paused) finds its next renewal refused, drops
// what it held in memory and never writes its old position back; whoever takes the lease after resume
// reads the new start from the table. The shard's tumbling window item is deleted. Calls: one
// UpdateItem, one DeleteItem.
func (s *Store) Reset(ctx context.Context, l Lease, startAt string, at time.Time) (Lease, bool, error) {
	if startAt != "" && startAt != StartLatest && startAt != StartAtTime || (startAt == StartAtTime) == at.IsZero() {
		return Lease{}, false, fmt.Errorf("reset shard %s of pipeline %s: bad start %q at %v", l.ShardID, l.Pipeline, startAt, at)
	}
	upd := expression.Set(expression.Name(attrFinished), expression.Value(false)).
		Set(expression.Name(attrUpdatedAt), expression.Value(stamp(s.now()))).
		Add(expression.Name(attrCounter), expression.Value(1))
	for _, a := range []string{attrOwner, attrWantedBy, attrCheckpoint, attrStartSeq, attrStartIter, attrFinishedAt, attrIteratorAge} {
		upd = upd.Remove(expression.Name(a))
	}
	if startAt == "" {
		upd = upd.Remove(expression.Name(attrStartAt))
	} else {
		upd = upd.Set(expression.Name(attrStartAt), expression.Value(startAt))
	}
	if at.IsZero() {
		upd = upd.Remove(expression.Name(attrStartTime))
	} else {
		upd = upd.Set(expression.Name(attrStartTime), expression.Value(stamp(at)))
	}
	item, ok, err := s.update(ctx, itemKey(l.Pipeline, leaseKey(l.ShardID)), upd, expression.Name(attrCounter).Equal(expression.Value(l.Counter)))
	if err != nil {
		return Lease{}, false, fmt.Errorf("reset shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	if !ok {
		return Lease{}, false, nil
	}
	// The shard's tumbling window goes too: reading starts over, and so do its windows (the state
	// would otherwise skip the records it covered).
	if _, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(l.Pipeline, windowKey(l.ShardID))}); err != nil {
		return Lease{}, false, fmt.Errorf("reset shard %s of pipeline %s: delete its window: %w", l.ShardID, l.Pipeline, err)
	}
	got, err := decodeLease(item)
	if err != nil {
		return Lease{}, false, fmt.Errorf("reset shard %s of pipeline %s: %w", l.ShardID, l.Pipeline, err)
	}
	return got, true, nil
}
