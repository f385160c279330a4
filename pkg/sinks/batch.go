package sinks

import (
	"fmt"
	"sync"

	"github.com/poller-dev/poller/pkg/event"
)

// kept reports whether b carries a RecordJSON entry for each of its records (nil for a record
// whose JSON was not kept).
func (b Batch) kept() bool { return b.RecordJSON != nil && len(b.RecordJSON) == len(b.Records) }

// Slice returns the batch of records [i:j] of b, with their kept JSON if b has it.
func (b Batch) Slice(i, j int) Batch {
	s := b
	s.Records = b.Records[i:j:j]
	if b.kept() {
		s.RecordJSON = b.RecordJSON[i:j:j]
	} else {
		s.RecordJSON = nil
	}
	return s
}

// AppendRecordJSON appends the JSON of record i to dst: the kept bytes when the batch has them,
// else event.AppendJSON's encoding, which is the same.
func (b Batch) AppendRecordJSON(dst []byte, i int) ([]byte, error) {
	if b.kept() && b.RecordJSON[i] != nil {
		return append(dst, b.RecordJSON[i]...), nil
	}
	out, err := event.AppendJSON(dst, &b.Records[i])
	if err != nil {
		return nil, fmt.Errorf("encode record %d (%s) of %s: %w", i, b.Records[i].Change.SequenceNumber, b.ShardID, err)
	}
	return out, nil
}

// EventJSON returns the batch as Lambda's event JSON, {"Records":[...]}: the bytes of
// json.Marshal(b.Event()), except that no records give [] rather than null. With kept JSON no
// record is encoded again. With a Window it is Lambda's DynamoDBTimeWindowEvent instead:
// the records and the window's members (window, state, shardId, ...).
func (b Batch) EventJSON() ([]byte, error) {
	buf := make([]byte, 0, b.sizeHint()+len(`{"Records":[]}`))
	buf = append(buf, `{"Records":[`...)
	var err error
	for i := range b.Records {
		if i > 0 {
			buf = append(buf, ',')
		}
		if buf, err = b.AppendRecordJSON(buf, i); err != nil {
			return nil, err
		}
	}
	return b.appendWindow(append(buf, ']'))
}

// Lines returns the batch as JSON Lines: each record's JSON (Lambda's record shape, not the
// {"Records": ...} envelope) followed by a newline.
func (b Batch) Lines() ([]byte, error) {
	return b.appendLines(make([]byte, 0, b.sizeHint()))
}

func (b Batch) appendLines(buf []byte) ([]byte, error) {
	var err error
	for i := range b.Records {
		if buf, err = b.AppendRecordJSON(buf, i); err != nil {
			return nil, err
		}
		buf = append(buf, '\n')
	}
	return buf, nil
}

// maxPooledLines is the largest buffer withLines keeps for reuse: a batch of a thousand small
// records fits; a 6 MB one is not kept alive between deliveries.
const maxPooledLines = 1 << 20

var linesPool = sync.Pool{New: func() any { return new([]byte) }}

// withLines runs write with the batch's JSON Lines in a buffer reused from delivery to delivery
// (the file and stdout sinks write one per batch). write must not keep the buffer.
func (b Batch) withLines(write func([]byte) error) error {
	bp := linesPool.Get().(*[]byte)
	if hint := b.sizeHint(); cap(*bp) < hint {
		*bp = make([]byte, 0, hint) // one allocation, not one per doubling
	}
	buf, err := b.appendLines((*bp)[:0])
	if err == nil {
		err = write(buf)
	}
	if cap(buf) <= maxPooledLines {
		*bp = buf[:0]
		linesPool.Put(bp)
	}
	return err
}

// sizeHint is the size of the records' JSON with a separator each: exact with kept JSON, a guess
// (1 KB a record) for records without.
func (b Batch) sizeHint() int {
	if !b.kept() {
		return 1024 * len(b.Records)
	}
	n := len(b.RecordJSON)
	for _, j := range b.RecordJSON {
		if j == nil {
			n += 1024
		}
		n += len(j)
	}
	return n
}
