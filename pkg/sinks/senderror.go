package sinks

import (
	"errors"
	"fmt"
)

// SendError is a partly failed call of a sink that sends record by record (a queue, a topic, a
// stream, a bus): the first Sent records of the batch were accepted by the service, the record at
// index Sent was not, for the reason Err, and nothing after it was sent (or what was is to be sent
// again). Unlike a *BatchError, which is a handler's answer and counts only with
// report_batch_item_failures, the failure policy always honours it, since it is the service's own
// account of what it stored: the records before Sent are delivered, and the rest is retried in
// order, so order per key holds and nothing before the failed record is sent twice.
//
// Err decides how the rest is retried: marked with ErrThrottled it is retried without using up
// max_retry_attempts; marked with ErrRecordTooLarge the record at Sent alone goes to on_failure
// at once and the records after it are sent on; anything else is a failed call (retry budget,
// bisect_batch_on_error).
type SendError struct {
	// Sent is how many records at the head of the batch were delivered: 0..len(batch)-1.
	Sent int
	// Err says why the record at Sent failed.
	Err error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("%d record(s) sent, then: %v", e.Sent, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// ErrRecordTooLarge marks a record that no call can ever deliver: it is over the service's size
// limit (an SQS message of more than 256 KB, say). A sink reports it in a *SendError whose Sent is
// that record's index.
var ErrRecordTooLarge = errors.New("record over the service's size limit")

// IsRecordTooLarge reports whether err marks a record that can never be delivered (ErrRecordTooLarge).
func IsRecordTooLarge(err error) bool { return errors.Is(err, ErrRecordTooLarge) }
