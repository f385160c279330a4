package sinks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// MaxWindowStateBytes bounds a tumbling window's state, as JSON. Lambda allows 1 MB; the poller
// keeps the state of each shard's open window in one item of the lease table, and a DynamoDB item
// holds at most 400 KB, so the poller allows less: an answer with a larger state fails the call.
const MaxWindowStateBytes = 256 << 10

// Window is the tumbling window of a call (Batch.Window): the window's bounds, the state the
// window's previous successful call answered, and whether this is the window's final call. A sink
// that supports windows (http, lambda) sends Lambda's DynamoDBTimeWindowEvent and, when the call
// succeeds (wholly or partly), replaces State with the state answered, which the next call of the
// window (a retry, the other half of a bisect, the next batch) then carries.
type Window struct {
	Start, End time.Time
	// State is what the handler answered last in this window ({} at first).
	State map[string]string
	// Final marks the window's last call (isFinalInvokeForWindow); TerminatedEarly marks a window
	// closed before its end because its shard ended (isWindowTerminatedEarly).
	Final, TerminatedEarly bool
}

// properties is the window part of the event, as aws-lambda-go types it.
func (w *Window) properties(b Batch) events.TimeWindowProperties {
	state := w.State
	if state == nil {
		state = map[string]string{}
	}
	return events.TimeWindowProperties{
		Window:         events.Window{Start: events.RFC3339EpochTime{Time: w.Start.UTC()}, End: events.RFC3339EpochTime{Time: w.End.UTC()}},
		State:          state,
		ShardID:        b.ShardID,
		EventSourceARN: b.StreamARN,

		IsFinalInvokeForWindow:  w.Final,
		IsWindowTerminatedEarly: w.TerminatedEarly,
	}
}

// appendWindow closes the event object started with {"Records":[...]: with the window's members
// when b has a window.
func (b Batch) appendWindow(buf []byte) ([]byte, error) {
	if b.Window == nil {
		return append(buf, '}'), nil
	}
	props, err := json.Marshal(b.Window.properties(b))
	if err != nil {
		return nil, fmt.Errorf("encode window of %s: %w", b.ShardID, err)
	}
	buf = append(buf, ',')
	return append(buf, props[1:]...), nil
}

// ParseWindowState reads the state of a tumbling window answer, Lambda's
// {"state": {...}, "batchItemFailures": [...]}. As in Lambda, an answer without a state is a failed
// call. The state must be an object of strings (aws-lambda-go's
// DynamoDBTimeWindowEventResponse) of at most MaxWindowStateBytes.
func ParseWindowState(answer []byte) (map[string]string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(answer), &top); err != nil || top == nil {
		return nil, fmt.Errorf("tumbling window answer is not a JSON object: %s", snippet(answer))
	}
	raw, err := member(top, "state", "State")
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("tumbling window answer has no state: %s", snippet(answer))
	}
	if len(raw) > MaxWindowStateBytes {
		return nil, fmt.Errorf("tumbling window state is %d bytes, over the %d byte limit", len(raw), MaxWindowStateBytes)
	}
	var state map[string]string
	if err := json.Unmarshal(raw, &state); err != nil {
		return nil, fmt.Errorf("tumbling window state is not an object of strings: %s", snippet(raw))
	}
	if state == nil {
		state = map[string]string{}
	}
	return state, nil
}

// readAnswer reads the answer of a call that succeeded (where names the call in errors): a tumbling
// window's state when b has a Window, then, with rbif (ReportBatchItemFailures), a partial batch
// response. The window's state becomes the answered one only when the call succeeded, wholly or
// partly; an answer that fails the whole batch leaves it as it was.
func readAnswer(where string, answer []byte, b Batch, rbif bool) error {
	var state map[string]string
	if b.Window != nil {
		var err error
		if state, err = ParseWindowState(answer); err != nil {
			return fmt.Errorf("%s: %w; the whole batch failed", where, err)
		}
	}
	var failed []string
	if rbif {
		var err error
		if failed, err = ParseBatchItemFailures(answer, b); err != nil {
			return fmt.Errorf("%s: %w; the whole batch failed", where, err)
		}
	}
	if b.Window != nil {
		b.Window.State = state
	}
	if len(failed) > 0 {
		return &BatchError{Failed: failed}
	}
	return nil
}
