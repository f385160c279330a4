package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// windowPrefix keys a shard's tumbling window item: one item per pipeline and shard, next to the
// shard's lease, which List ignores.
const windowPrefix = "window#"

func windowKey(shardID string) string { return windowPrefix + shardID }

// Window is a shard's tumbling window as stored: its start, the state the handler answered last,
// the last record that state covers, and whether the window's final call was made.
type Window struct {
	Start   time.Time
	State   map[string]string
	Through string
	Closed  bool
}

// windowItem is the stored form of a Window. The state is JSON text: within the 400 KB item limit
// (the poller caps a state at 256 KB).
type windowItem struct {
	Pipeline  string `dynamodbav:"pipeline"`
	Key       string `dynamodbav:"key"`
	StartMs   int64  `dynamodbav:"window_start_ms"`
	State     string `dynamodbav:"window_state"`
	Through   string `dynamodbav:"window_through,omitempty"`
	Closed    bool   `dynamodbav:"window_closed"`
	UpdatedAt string `dynamodbav:"updated_at"`
}

// LoadWindow returns the stored tumbling window of a pipeline's shard, the zero Window when none
// is stored. Calls: one consistent GetItem.
func (s *Store) LoadWindow(ctx context.Context, pipeline, shardID string) (Window, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: itemKey(pipeline, windowKey(shardID)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Window{}, fmt.Errorf("load window of shard %s of pipeline %s: %w", shardID, pipeline, err)
	}
	if len(out.Item) == 0 {
		return Window{}, nil
	}
	var it windowItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Window{}, fmt.Errorf("load window of shard %s of pipeline %s: %w", shardID, pipeline, err)
	}
	w := Window{Start: time.UnixMilli(it.StartMs).UTC(), Through: it.Through, Closed: it.Closed}
	if it.StartMs == 0 {
		w.Start = time.Time{}
	}
	if it.State != "" {
		if err := json.Unmarshal([]byte(it.State), &w.State); err != nil {
			return Window{}, fmt.Errorf("load window of shard %s of pipeline %s: state: %w", shardID, pipeline, err)
		}
	}
	return w, nil
}

// SaveWindow stores the tumbling window of a pipeline's shard, replacing the stored one. Calls: one
// PutItem.
func (s *Store) SaveWindow(ctx context.Context, pipeline, shardID string, w Window) error {
	state, err := json.Marshal(w.State)
	if err != nil {
		return fmt.Errorf("save window of shard %s of pipeline %s: %w", shardID, pipeline, err)
	}
	it := windowItem{Pipeline: pipeline, Key: windowKey(shardID), State: string(state), Through: w.Through,
		Closed: w.Closed, UpdatedAt: stamp(s.now())}
	if !w.Start.IsZero() {
		it.StartMs = w.Start.UnixMilli()
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("save window of shard %s of pipeline %s: %w", shardID, pipeline, err)
	}
	if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}); err != nil {
		return fmt.Errorf("save window of shard %s of pipeline %s: %w", shardID, pipeline, err)
	}
	return nil
}
