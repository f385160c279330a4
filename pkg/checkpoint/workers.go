package checkpoint

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Heartbeat bumps the counter of the worker's heartbeat item, creating it on first use, and returns the
// new counter: Beat with no earlier beat, for callers that vouch for no lease with it. Calls: one
// UpdateItem.
func (s *Store) Heartbeat(ctx context.Context, pipeline, workerID string) (int64, error) {
	b, _, err := s.Beat(ctx, pipeline, workerID, Beat{})
	return b.Counter, err
}

// Beat is what a worker's own last heartbeat left in its item.
type Beat struct {
	Counter, Takes int64
}

// Beat writes the worker's heartbeat after prev, its own last one (the zero Beat: none yet), and
// returns the new one, and whether it is clean: the item is as prev left it, so no lease of the worker
// was taken over its heartbeat since (Worker.Takes did not move) and nobody removed the item. Other
// workers count the live workers of a pipeline from these counters (List, Tracker), and keep a
// vouching worker's leases while its counter moves (ProtocolVouch); only a clean beat may vouch.
//
// The item is marked ProtocolVouch. Only the worker itself moves the counter. A beat after prev
// that finds the item changed by another (a take moved Takes, or the item was removed as dead) is
// written again unconditionally, adopting the item as it is, and is not clean; so is a first beat.
// Call it every renew_interval. Calls: one UpdateItem, two when prev is no longer the item's state.
func (s *Store) Beat(ctx context.Context, pipeline, workerID string, prev Beat) (Beat, bool, error) {
	if pipeline == "" || workerID == "" {
		return prev, false, fmt.Errorf("heartbeat of worker %q of pipeline %q: pipeline and worker ID are required", workerID, pipeline)
	}
	fail := func(err error) error {
		return fmt.Errorf("heartbeat of worker %s of pipeline %s: %w", workerID, pipeline, err)
	}
	key := itemKey(pipeline, workerKey(workerID))
	if prev.Counter > 0 {
		cond := expression.Name(attrCounter).Equal(expression.Value(prev.Counter)).
			And(expression.Name(attrTakes).Equal(expression.Value(prev.Takes)))
		item, ok, err := s.update(ctx, key, s.beatUpdate(workerID, expression.Name(attrCounter)), cond)
		if err != nil {
			return prev, false, fail(err)
		}
		if ok {
			b, err := decodeBeat(item)
			if err != nil {
				return b, false, fail(err)
			}
			return b, true, nil
		}
	}
	// The counter goes on from prev even if the item was removed: a taker conditional on a counter it
	// saw must never find that value again on a live worker.
	upd := s.beatUpdate(workerID, expression.Name(attrCounter).IfNotExists(expression.Value(prev.Counter))).
		Set(expression.Name(attrTakes), expression.Name(attrTakes).IfNotExists(expression.Value(0)))
	item, _, err := s.update(ctx, key, upd, expression.ConditionBuilder{})
	if err != nil {
		return prev, false, fail(err)
	}
	b, err := decodeBeat(item)
	if err != nil {
		return b, false, fail(err)
	}
	return b, false, nil
}

// beatUpdate is a heartbeat's update of worker workerID's item: protocol 2, updated_at, and counter
// and vouched_counter both set to one more than counter (the item's counter, or what stands for it
// when the item may be gone). Every right-hand side reads the item as it was before the update, so
// the two are equal.
func (s *Store) beatUpdate(workerID string, counter expression.OperandBuilder) expression.UpdateBuilder {
	next := expression.Plus(counter, expression.Value(1))
	return expression.Set(expression.Name("worker_id"), expression.Value(workerID)).
		Set(expression.Name(attrUpdatedAt), expression.Value(stamp(s.now()))).
		Set(expression.Name(attrProtocol), expression.Value(ProtocolVouch)).
		Set(expression.Name(attrCounter), next).
		Set(expression.Name(attrVouchedAt), next)
}

func decodeBeat(item map[string]types.AttributeValue) (Beat, error) {
	w, err := decodeWorker(item)
	return Beat{Counter: w.Counter, Takes: w.Takes}, err
}

// DeleteWorker removes a worker's heartbeat item on the condition that its counter is still w.Counter:
// a worker removes its own on a clean stop (after its last Heartbeat), and any worker may remove one
// that the Tracker reports dead. (false, nil) when the worker heartbeated since or the item is gone.
// Calls: one DeleteItem.
func (s *Store) DeleteWorker(ctx context.Context, w Worker) (bool, error) {
	deleted, err := s.deleteIf(ctx, itemKey(w.Pipeline, workerKey(w.ID)), expression.Name(attrCounter).Equal(expression.Value(w.Counter)))
	if err != nil {
		return false, fmt.Errorf("delete worker %s of pipeline %s: %w", w.ID, w.Pipeline, err)
	}
	return deleted, nil
}
