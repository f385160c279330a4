package progress

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Age follows the creation time one shard's iterator age is measured from (see Mark). The zero Age
// has read nothing yet.
type Age struct {
	newest   time.Time // creation time of the newest record read
	caughtUp bool      // the last page was empty: the shard holds nothing newer
	paged    bool      // a page was read: the mark says something
	told     bool      // Mark reported a change once
	marked   time.Time // the last value Mark returned as changed
}

// Created returns the creation time to keep for record r of a page read at readAt (to give to
// Tracker.Add), and notes it as the newest read. A record without one gets the one of the record
// read before it, else the time its page was read: an estimate that keeps creation times in shard
// order, so that the first record not done stays the oldest.
func (a *Age) Created(r types.Record, readAt time.Time) time.Time {
	var t time.Time
	if r.Dynamodb != nil && r.Dynamodb.ApproximateCreationDateTime != nil && r.Dynamodb.ApproximateCreationDateTime.Unix() > 0 {
		t = *r.Dynamodb.ApproximateCreationDateTime
	}
	switch {
	case !t.IsZero():
	case !a.newest.IsZero():
		t = a.newest
	case !readAt.IsZero():
		t = readAt
	default:
		t = time.Now()
	}
	if t.After(a.newest) {
		a.newest = t
	}
	return t
}

// Page notes a page of n records: an empty one shows the shard is caught up.
func (a *Age) Page(n int) { a.caughtUp, a.paged = n == 0, true }

// Mark returns the creation time the shard's iterator age is measured from, given the records t
// holds, and whether it changed since the last time Mark reported a change. The age says how far
// behind the stream the shard's delivery is, as Lambda's IteratorAge does: while some record read
// is not done it is measured from the oldest of them (a batch stuck retrying shows its true,
// growing age, whatever empty pages come); once every record read is done, from the newest record
// read, until an empty page (Page(0)) shows the shard caught up: then the zero time, age 0. Nothing
// is reported before the first page, and the first mark after it is, even age 0: a shard caught up
// from its first page says so once.
func (a *Age) Mark(t *Tracker) (time.Time, bool) {
	oldest, pending := t.Oldest()
	m := ageMark(oldest, pending, a.newest, a.caughtUp)
	if !a.paged || a.told && m.Equal(a.marked) {
		return m, false
	}
	a.marked, a.told = m, true
	return m, true
}

// ageMark is the creation time a shard's iterator age is measured from; the zero time means age 0.
// The age says how far behind the stream the shard's delivery is, as Lambda's IteratorAge does:
//
//   - While some record read is not done (waiting in a lane, in flight, retrying, or reported to
//     on_failure not yet), it is the oldest of them. Empty pages change nothing then: a batch stuck
//     retrying shows its true, growing age, not 0.
//   - Once every record read is done, it is the newest record read, until an empty page shows the
//     shard holds nothing newer (caught up: 0).
func ageMark(oldest time.Time, pending bool, newest time.Time, caughtUp bool) time.Time {
	switch {
	case pending:
		return oldest
	case caughtUp:
		return time.Time{}
	default:
		return newest
	}
}
