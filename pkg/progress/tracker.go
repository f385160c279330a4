// Package progress tracks how far a shard's checkpoint may go, and writes it. It sits between the
// dispatcher (pkg/dispatch), which tells it each record read, handed to the sink and done, and the
// lease table, which a Checkpointer writes to.
//
//   - Tracker keeps the records of one shard in read order and finds the contiguous done prefix: the
//     checkpoint never passes a record that is not done.
//   - Checkpointer writes checkpoints in the background, coalesced, retrying a failed write in place.
//   - Age follows the creation time the shard's iterator age is measured from.
//
// Every type here is owned by one goroutine (the dispatcher's loop) unless its doc says otherwise.
package progress

import "time"

// Tracker tracks the records of one shard in read order and which of them are done: delivered,
// filtered out, or discarded to on_failure. Its checkpoint is the sequence number of the last record
// of the contiguous done prefix.
//
// Invariant: a checkpoint never passes a record that is not done. With several lanes in flight, a
// record done out of order waits until every record before it is done.
//
// It also counts, per lane, the records handed to the sink (Sent) that the checkpoint has not passed
// yet: in flight, or done behind an earlier record that is not. The dispatcher bounds that count to
// one batch per lane, and what the checkpoint passed but the lease table has not yet acknowledged to
// one more (see dispatch.Dispatcher): what a kill -9 can deliver again.
//
// The zero Tracker is empty and ready to use.
type Tracker struct {
	base    int64   // id of entries[head]
	head    int     // entries[:head] are passed and free
	entries []entry // entries[head:] are not yet passed by the checkpoint, in read order
	last    string  // the last checkpoint Advance returned
	sent    []int   // lane -> records of entries[head:] handed to the sink from that lane
}

type entry struct {
	seq     string
	created time.Time // the record's creation time, for Oldest
	done    bool
	// lane is 1 + the lane that handed the record to the sink, 0 while it was not sent.
	lane int32
}

// Add appends a record created at created and returns its id.
func (p *Tracker) Add(seq string, created time.Time) int64 {
	p.entries = append(p.entries, entry{seq: seq, created: created})
	return p.base + int64(len(p.entries)-1-p.head)
}

// Done marks the record with id done. Ids already passed are ignored.
func (p *Tracker) Done(id int64) {
	if e := p.at(id); e != nil {
		e.done = true
	}
}

// Sent records that the record with id was handed to the sink from lane. Ids already passed are
// ignored.
func (p *Tracker) Sent(id int64, lane int) {
	e := p.at(id)
	if e == nil || e.lane != 0 {
		return
	}
	for len(p.sent) <= lane {
		p.sent = append(p.sent, 0)
	}
	e.lane = int32(lane) + 1
	p.sent[lane]++
}

// SentBy is the number of records lane handed to the sink that the checkpoint has not passed.
func (p *Tracker) SentBy(lane int) int {
	if lane < len(p.sent) {
		return p.sent[lane]
	}
	return 0
}

func (p *Tracker) at(id int64) *entry {
	if i := id - p.base; i >= 0 && i < int64(len(p.entries)-p.head) {
		return &p.entries[p.head+int(i)]
	}
	return nil
}

// Advance passes the done prefix and reports the new checkpoint, if it moved.
func (p *Tracker) Advance() (seq string, moved bool) {
	start := p.head
	for p.head < len(p.entries) && p.entries[p.head].done {
		if l := p.entries[p.head].lane; l != 0 {
			p.sent[l-1]--
		}
		p.head++
	}
	if p.head == start {
		return p.last, false
	}
	p.last = p.entries[p.head-1].seq
	p.base += int64(p.head - start)
	// Compact once the passed part outweighs the rest, so memory follows what is pending.
	if p.head > len(p.entries)/2 {
		n := copy(p.entries, p.entries[p.head:])
		clear(p.entries[n:])
		p.entries = p.entries[:n]
		p.head = 0
	}
	return p.last, true
}

// Oldest returns the creation time of the oldest record not yet done, as of the last Advance (which
// passes the done prefix, so the first record it did not pass is not done), and false when every
// record added is done and passed. Creation times do not decrease along a shard: the first record
// not done is the oldest.
func (p *Tracker) Oldest() (time.Time, bool) {
	if p.head == len(p.entries) {
		return time.Time{}, false
	}
	return p.entries[p.head].created, true
}

// PassedEnd is the id the next record not yet passed by the checkpoint has or will have: every
// id below it is passed.
func (p *Tracker) PassedEnd() int64 { return p.base }

// Pending is the number of records not yet passed by the checkpoint.
func (p *Tracker) Pending() int { return len(p.entries) - p.head }
