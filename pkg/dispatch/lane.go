package dispatch

import (
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// item is one record waiting in a lane.
type item struct {
	rec events.DynamoDBEventRecord
	// json is the record's event JSON, encoded once when it was read, which the batch carries to
	// the sink (sinks.Batch.RecordJSON) so that the sink writes it instead of encoding the record
	// again; nil for a record over keepJSONMax, which the sink encodes.
	json []byte
	id   int64 // in the loop's progress.Tracker
	size int   // event JSON size
}

// keepJSONMax is the largest record whose event JSON a lane keeps. Encoding costs mostly per
// record for small ones (maps, sorting, many short values), mostly per byte for large ones; the
// kept bytes cost memory per byte, on top of the record itself and outside the byte budgets. So
// small records keep it, which saves a second encoding where it costs most, and large ones, where
// the byte budgets bind, hold no more memory than before.
const keepJSONMax = 4 << 10

// lane holds the records of some partition keys in read order, and has one batch in flight at most.
type lane struct {
	queue []item
	// bytes is the event JSON size of the queued records (records and commas, no envelope).
	bytes int
	busy  bool
	since time.Time // when the oldest queued record arrived, for the batching window
}

// envelopeBytes is the size of {"Records":[]} around the records.
const envelopeBytes = len(`{"Records":[]}`)

// push queues it, which arrived at now.
func (l *lane) push(it item, now time.Time) {
	if len(l.queue) == 0 {
		l.since = now
	} else {
		l.bytes++ // the comma
	}
	l.queue = append(l.queue, it)
	l.bytes += it.size
}

// hold reports whether a lane with records waits on (its batching window is open at now), and when
// its window ends. Like Lambda, a batch goes when the window ends, batch_size records wait, or the
// waiting records fill an event (the payload limit); and when the memory budget stops reading
// (memFull) or the shard ended, as no more records can come.
func (d *Dispatcher) hold(l *lane, memFull, ended bool, now time.Time) (bool, time.Time) {
	deadline := l.since.Add(d.Window)
	full := len(l.queue) >= d.BatchSize || d.MaxEventBytes > 0 && envelopeBytes+l.bytes >= d.MaxEventBytes || memFull
	return d.Window > 0 && !full && !ended && now.Before(deadline), deadline
}

// laneRoom is how many records a lane may send now (the repeat bound, see Dispatcher): none while
// maxUnwrittenBatches of its batches reached the sink beyond the last checkpoint written
// (unwrittenBatches), else what is left of batchSize after the records it sent that the tracker's
// checkpoint has not passed (sentNotPassed).
func laneRoom(batchSize, sentNotPassed, unwrittenBatches int) int {
	if unwrittenBatches >= maxUnwrittenBatches {
		return 0
	}
	return max(0, batchSize-sentNotPassed)
}

// cut takes the next batch off a lane: at most limit (<= BatchSize) records, at most MaxEventBytes
// of event JSON, records of one tumbling window, and always at least one record. It returns the
// records' ids and sizes.
func (d *Dispatcher) cut(l *lane, limit int) (sinks.Batch, []int64, []int) {
	n, size := 0, envelopeBytes
	maxBytes := d.maxEventBytes()
	end := windowCut(l.queue, min(len(l.queue), limit), d.Tumbling)
	for n < end {
		next := l.queue[n].size
		if n > 0 {
			next++ // the comma
		}
		if n > 0 && maxBytes > 0 && size+next > maxBytes {
			break
		}
		size += next
		n++
	}
	b := sinks.Batch{Pipeline: d.Pipeline, StreamARN: d.StreamARN, ShardID: d.ShardID, HashKey: d.HashKey,
		Records: make([]events.DynamoDBEventRecord, n), RecordJSON: make([][]byte, n)}
	ids, sizes := make([]int64, n), make([]int, n)
	for i := range n {
		it := &l.queue[i]
		b.Records[i], b.RecordJSON[i] = it.rec, it.json
		ids[i], sizes[i] = it.id, it.size
	}
	l.bytes -= size - envelopeBytes
	if n < len(l.queue) {
		l.bytes-- // the comma after the last record cut
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	l.since = time.Now()
	return b, ids, sizes
}

// verdict is what becomes of a record read.
type verdict int

const (
	keep        verdict = iota // queued on its lane
	filteredOut                // matched no filter: done
	malformed                  // cannot be delivered: done, and dropped
)

// accept converts and filters a page's records and queues them on their lanes, charging them to
// Memory at their event JSON size; it returns how many it queued.
func (l *loop) accept(p shards.Page) int {
	n := len(p.Records)
	l.age.Page(n)
	if n == 0 {
		return 0
	}
	l.hooks.OnRecordsPolled(l.d.ShardID, n)
	var counts [3]int // by verdict
	var charged int64
	var buf []byte // scratch for measuring records, reused: large items would otherwise leave as much garbage
	// rec is filled by admit for each record in turn: one variable for the page, since passing its
	// address on (the filter) moves it to the heap.
	var rec events.DynamoDBEventRecord
	now := time.Now()
	for _, r := range p.Records {
		id := l.progress.Add(aws.ToString(r.Dynamodb.SequenceNumber), l.age.Created(r, p.ReadAt))
		var v verdict
		buf, v = l.d.admit(r, &rec, buf[:0])
		counts[v]++
		if v != keep {
			l.progress.Done(id)
			continue
		}
		it := item{rec: rec, id: id, size: len(buf)}
		if len(buf) <= keepJSONMax {
			it.json = l.kept.copy(buf) // buf is scratch, reused for the next record
		}
		l.lanes[l.d.laneOf(&rec, len(l.lanes))].push(it, now)
		charged += int64(len(buf))
	}
	if l.d.Memory != nil {
		l.d.Memory.Charge(charged)
	}
	if counts[filteredOut] > 0 {
		l.hooks.OnRecordsFilteredOut(l.d.ShardID, counts[filteredOut])
	}
	if counts[malformed] > 0 {
		l.hooks.OnRecordsDropped(l.d.ShardID, hooks.DroppedMalformed, counts[malformed])
	}
	return counts[keep]
}

// admit converts r to Lambda's event shape, filters it, and encodes it to buf: its event JSON,
// which sizes the batches and (see keepJSONMax) is what the sink writes. A record that cannot be
// converted or encoded is logged.
func (d *Dispatcher) admit(r types.Record, rec *events.DynamoDBEventRecord, buf []byte) ([]byte, verdict) {
	seq := aws.ToString(r.Dynamodb.SequenceNumber)
	var err error
	if *rec, err = event.FromStreams(r, d.StreamARN); err != nil {
		// The SDK decoded a record poller cannot express as Lambda's event. It cannot be delivered;
		// say exactly which and why, and move on rather than stall the shard.
		d.Log.Error("record cannot be converted to Lambda's event shape; skipped",
			zap.String("sequence_number", seq), zap.Error(err))
		return buf, malformed
	}
	if d.Filter != nil && !d.Filter.Match(rec) {
		return buf, filteredOut
	}
	if buf, err = event.AppendJSON(buf, rec); err != nil {
		d.Log.Error("record cannot be encoded as JSON; skipped", zap.String("sequence_number", seq), zap.Error(err))
		return buf, malformed
	}
	return buf, keep
}

// arenaChunk is the size of the chunks an arena hands kept JSON out of: a few dozen small
// records' worth, so that a chunk a slow lane still holds keeps little else alive.
const arenaChunk = 64 << 10

// arena hands out copies of records' JSON from shared chunks: one allocation per chunk instead of
// one (rounded up to a size class) per record. A chunk stays alive while any record copied into it
// is queued or in flight.
type arena struct{ chunk []byte }

// copy returns a copy of b, which is at most keepJSONMax long.
func (a *arena) copy(b []byte) []byte {
	if cap(a.chunk)-len(a.chunk) < len(b) {
		a.chunk = make([]byte, 0, max(arenaChunk, len(b)))
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// release gives back the memory of records that are done.
func (d *Dispatcher) release(sizes []int) {
	if d.Memory == nil {
		return
	}
	var n int64
	for _, s := range sizes {
		n += int64(s)
	}
	d.Memory.Release(n)
}

// windowReserve is the room a tumbling window's members (window, state, shardId, ...) take in an
// event, besides the records.
const windowReserve = sinks.MaxWindowStateBytes + 2048

// maxEventBytes is the JSON size the records of a batch may take: MaxEventBytes, less room for a
// tumbling window's members.
func (d *Dispatcher) maxEventBytes() int {
	if d.Tumbling <= 0 || d.MaxEventBytes <= 0 {
		return d.MaxEventBytes
	}
	return max(d.MaxEventBytes-windowReserve, 1)
}
