package checkpoint

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

// Heartbeat bumps the counter of the worker's heartbeat item, creating it on first use, and returns the
// new counter. Other workers count the live workers of a pipeline from these counters (List, Tracker).
// It is the one unconditional write: only the worker itself writes its item. Call it every
// renew_interval. Calls: one UpdateItem.
func (s *Store) Heartbeat(ctx context.Context, pipeline, workerID string) (int64, error) {
	if pipeline == "" || workerID == "" {
		return 0, fmt.Errorf("heartbeat of worker %q of pipeline %q: pipeline and worker ID are required", workerID, pipeline)
	}
	upd := expression.Set(expression.Name("worker_id"), expression.Value(workerID)).
		Set(expression.Name(attrUpdatedAt), expression.Value(stamp(s.now()))).
		Add(expression.Name(attrCounter), expression.Value(1))
	item, _, err := s.update(ctx, itemKey(pipeline, workerKey(workerID)), upd, expression.ConditionBuilder{})
	if err != nil {
		return 0, fmt.Errorf("heartbeat of worker %s of pipeline %s: %w", workerID, pipeline, err)
	}
	w, err := decodeWorker(item)
	if err != nil {
		return 0, fmt.Errorf("heartbeat of worker %s of pipeline %s: %w", workerID, pipeline, err)
	}
	return w.Counter, nil
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
