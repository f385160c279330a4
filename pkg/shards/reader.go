package shards

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"
)

// readAPI is the part of the Streams API that a Reader uses.
type readAPI interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Position is where reading starts: TRIM_HORIZON, LATEST, or after a sequence number.
type Position struct {
	Type types.ShardIteratorType
	// Seq is the sequence number for AT_ and AFTER_SEQUENCE_NUMBER.
	Seq string
}

// After returns the position right after seq.
func After(seq string) Position {
	return Position{Type: types.ShardIteratorTypeAfterSequenceNumber, Seq: seq}
}

// Positions without a sequence number.
var (
	TrimHorizon = Position{Type: types.ShardIteratorTypeTrimHorizon}
	Latest      = Position{Type: types.ShardIteratorTypeLatest}
)

func (p Position) String() string {
	if p.Seq == "" {
		return string(p.Type)
	}
	return string(p.Type) + " " + p.Seq
}

// Page is what one GetRecords call gave: records in sequence-number order, and whether the shard is
// now read to its end (closed, and no record left).
type Page struct {
	Records []types.Record
	End     bool
	// ReadAt is when the answer arrived, for iterator age.
	ReadAt time.Time
	// Bytes is what the reader charged to its Memory for the page (PageBytes of its records); the
	// consumer releases it once it has accounted for the records its own way.
	Bytes int64
	// Next is the iterator after this page ("" at the end): a position another reader may start
	// from (Reader.StartIterator) within the iterator's 15 minutes.
	Next string
}

// Observer is told what the reader did, for metrics. Calls come from the reader's goroutine.
type Observer interface {
	// GetRecords counts one call by result: "ok", "throttled" or "error".
	GetRecords(result string)
	// Trimmed counts a position lost to the stream's 24-hour trimming: reading restarted at
	// TRIM_HORIZON, so records between the lost position and the new horizon were never read.
	Trimmed()
	// MemoryWait counts a GetRecords call held back until the shard's (or the process's) byte
	// budget allows it; it is called when the wait begins.
	MemoryWait()
}

// Reader reads one shard. Fields are immutable after Run starts.
type Reader struct {
	API       readAPI
	StreamARN string
	ShardID   string
	// Start is where to begin; later positions are derived from the last record read.
	Start Position
	// StartIterator, if set, is an iterator to begin with instead of asking for one at Start: a
	// previous reader's position (Page.Next). If its first use fails (expired, say), reading begins at
	// Start after all.
	StartIterator string
	// PollInterval is the wait after a page that was not full (Lambda: 250 ms). A full page is
	// followed at once by the next call, so a backlog drains as fast as the stream allows.
	PollInterval time.Duration
	// Limit is GetRecords' Limit, 1..1000.
	Limit int32
	// Backoff gives the wait before retry number attempt (1, 2, ...) after a throttle or error.
	Backoff  func(attempt int) time.Duration
	Observer Observer
	// Memory, if not nil, is the shard's byte budget: each GetRecords call waits until it allows
	// reading and asks for no more records than its room holds (see pageLimit), and each page is
	// charged to it (Page.Bytes) before it is passed on. Until the shard's record size is known the
	// reader asks for one record (a probe), which it sends with the next page, not alone: a batch
	// is never cut short by it.
	Memory Memory
	Log    *zap.Logger
}

// Memory is the part of a shard's byte budget the reader uses; *membudget.Account satisfies it.
type Memory interface {
	// Full reports that Wait would wait.
	Full() bool
	// Wait returns once the shard may read more, or ctx.Err().
	Wait(ctx context.Context) error
	// Room is how many bytes the shard may still read before it must wait.
	Room() int64
	Charge(n int64)
}

// pageLimit is the Limit of the next GetRecords call under a memory budget: as many records as
// room holds at perRecord bytes each, at least 1 (a shard may always read), at most most. GetRecords
// caps a page at about 1 MB on its own, but not every implementation does (DynamoDB Local does not),
// and a full page of large items is worth bounding anyway.
func pageLimit(most int32, room, perRecord int64) int32 {
	if perRecord <= 0 {
		return most
	}
	return int32(min(int64(most), max(1, room/perRecord)))
}

// largestRecord is the largest record's cost in PageBytes terms, 0 for no records.
func largestRecord(recs []types.Record) int64 {
	var most int64
	for i := range recs {
		most = max(most, PageBytes(recs[i:i+1]))
	}
	return most
}

// recordOverhead is added to a record's SizeBytes in PageBytes: the event's fixed fields (event ID,
// ARN, sequence number, ...) and the type wrappers of its attributes.
const recordOverhead = 1024

// PageBytes estimates the memory of records before they are converted: their SizeBytes (keys and
// images as DynamoDB counts them) plus recordOverhead each.
func PageBytes(recs []types.Record) int64 {
	var n int64
	for _, rec := range recs {
		n += recordOverhead
		if rec.Dynamodb != nil {
			n += aws.ToInt64(rec.Dynamodb.SizeBytes)
		}
	}
	return n
}

// ErrShardGone is returned by Run when the stream no longer has the shard (trimmed away whole, or
// the stream was deleted).
var ErrShardGone = fmt.Errorf("shard no longer exists")

// Run reads the shard into out until the shard ends (then the last page has End set and Run returns
// nil), ctx is canceled (ctx.Err()), or the shard is gone (ErrShardGone). Only one GetRecords is in
// flight at a time; a send to out waits for the consumer, so a slow sink slows reading (and an
// iterator that expires meanwhile is renewed after the last record read, not at the checkpoint, so
// nothing already sent is read twice).
func (r *Reader) Run(ctx context.Context, out chan<- Page) error {
	log := r.Log
	if log == nil {
		log = zap.NewNop()
	}
	pos := r.Start
	borrowed := r.StartIterator != ""
	iter := aws.String(r.StartIterator)
	if !borrowed {
		var err error
		if iter, err = r.iterator(ctx, pos); err != nil {
			return err
		}
	}
	timer := stoppedTimer()
	defer timer.Stop()
	attempt := 0 // throttles and errors since the last page
	expired := 0 // expired iterators since the last page
	// perRecord is what the next page's records are expected to cost: the largest of the last page
	// with records, 0 before one was read. probe holds the records of a probe until the next page.
	var perRecord int64
	var probe []types.Record
	for {
		if iter == nil {
			select {
			case out <- Page{End: true, ReadAt: time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		limit := r.Limit
		if r.Memory != nil {
			if r.Memory.Full() {
				r.Observer.MemoryWait()
			}
			if err := r.Memory.Wait(ctx); err != nil {
				return err
			}
			limit = 1 // a probe
			if perRecord > 0 {
				limit = pageLimit(r.Limit, r.Memory.Room(), perRecord)
			}
		}
		res, err := r.API.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(limit)})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case borrowed && !isThrottled(err):
				log.Info("a previous reader's iterator failed; starting at the position instead", zap.Stringer("position", pos), zap.Error(err))
				borrowed = false
				if iter, err = r.iterator(ctx, pos); err != nil {
					return err
				}
				continue
			case isExpiredIterator(err):
				r.Observer.GetRecords("error")
				log.Debug("shard iterator expired; renewing", zap.Stringer("position", pos))
				// One expiry is normal after a slow consumer: renew at once. A renewed iterator that
				// expires again before any page means something else is wrong: back off, not spin.
				expired++
				if expired > 1 && !sleep(ctx, timer, r.Backoff(expired-1)) {
					return ctx.Err()
				}
				if iter, err = r.iterator(ctx, pos); err != nil {
					return err
				}
				continue
			case isTrimmed(err):
				r.Observer.GetRecords("error")
				r.trimmed(log, pos)
				pos = TrimHorizon
				if iter, err = r.iterator(ctx, pos); err != nil {
					return err
				}
				continue
			case isNotFound(err):
				r.Observer.GetRecords("error")
				if len(probe) > 0 && !r.send(ctx, out, Page{Records: probe, ReadAt: time.Now()}) {
					return ctx.Err()
				}
				return fmt.Errorf("get records from shard %s: %w: %w", r.ShardID, ErrShardGone, err)
			}
			attempt++
			if isThrottled(err) {
				r.Observer.GetRecords("throttled")
				log.Debug("get records throttled", zap.Int("attempt", attempt))
			} else {
				r.Observer.GetRecords("error")
				log.Warn("get records failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
			}
			if !sleep(ctx, timer, r.Backoff(attempt)) {
				return ctx.Err()
			}
			continue
		}
		attempt, expired, borrowed = 0, 0, false
		r.Observer.GetRecords("ok")
		recs := r.wellFormed(res.Records, log)
		if n := len(recs); n > 0 {
			pos = After(aws.ToString(recs[n-1].Dynamodb.SequenceNumber))
			if r.Memory != nil {
				wasProbe := perRecord == 0
				perRecord = largestRecord(recs)
				if wasProbe && res.NextShardIterator != nil {
					probe, iter = recs, res.NextShardIterator // sent with the next page
					continue
				}
			}
		}
		page := Page{Records: append(probe, recs...), End: res.NextShardIterator == nil, ReadAt: time.Now(),
			Next: aws.ToString(res.NextShardIterator)}
		probe = nil
		// Empty pages are sent too: they tell the consumer the shard is caught up (iterator age 0).
		if !r.send(ctx, out, page) {
			return ctx.Err()
		}
		if page.End {
			return nil
		}
		iter = res.NextShardIterator
		if !full(res.Records, limit) {
			if !sleep(ctx, timer, r.PollInterval) {
				return ctx.Err()
			}
		}
	}
}

// send charges page to Memory and passes it on; false when ctx ended first.
func (r *Reader) send(ctx context.Context, out chan<- Page, page Page) bool {
	if r.Memory != nil {
		page.Bytes = PageBytes(page.Records)
		r.Memory.Charge(page.Bytes)
	}
	select {
	case out <- page:
		return true
	case <-ctx.Done():
		return false
	}
}

// pageBytes is GetRecords' size cap: a page is full at Limit records or about 1 MB.
const pageBytes = 1 << 20

// full reports a page that hit GetRecords' record or size cap: more records are likely waiting, so
// the next call goes out at once instead of after PollInterval.
func full(recs []types.Record, limit int32) bool {
	if len(recs) >= int(limit) {
		return true
	}
	var size int64
	for _, rec := range recs {
		if rec.Dynamodb != nil {
			size += aws.ToInt64(rec.Dynamodb.SizeBytes)
		}
	}
	return size >= pageBytes*9/10
}

// wellFormed drops records that carry no stream record or sequence number, which the service never
// sends: they could be neither delivered nor checkpointed. Each one is logged as an error.
func (r *Reader) wellFormed(recs []types.Record, log *zap.Logger) []types.Record {
	for i, rec := range recs {
		if rec.Dynamodb != nil && rec.Dynamodb.SequenceNumber != nil {
			continue
		}
		kept := append([]types.Record(nil), recs[:i]...)
		for _, rec := range recs[i:] {
			if rec.Dynamodb == nil || rec.Dynamodb.SequenceNumber == nil {
				log.Error("stream record without a sequence number skipped", zap.String("event_id", aws.ToString(rec.EventID)))
				continue
			}
			kept = append(kept, rec)
		}
		return kept
	}
	return recs
}

// iterator gets a shard iterator at pos, retrying throttles and errors with backoff. A trimmed
// position restarts at TRIM_HORIZON.
// Iterator asks for an iterator at pos, retrying like Run does: "" means a closed shard with nothing
// after pos. A caller that must know when a position was taken (LATEST: "the tip now") asks for it
// here and passes it to Run as StartIterator.
func (r *Reader) Iterator(ctx context.Context, pos Position) (string, error) {
	it, err := r.iterator(ctx, pos)
	return aws.ToString(it), err
}

func (r *Reader) iterator(ctx context.Context, pos Position) (*string, error) {
	timer := stoppedTimer()
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		in := &dynamodbstreams.GetShardIteratorInput{
			StreamArn:         aws.String(r.StreamARN),
			ShardId:           aws.String(r.ShardID),
			ShardIteratorType: pos.Type,
		}
		if pos.Seq != "" {
			in.SequenceNumber = aws.String(pos.Seq)
		}
		out, err := r.API.GetShardIterator(ctx, in)
		if err == nil {
			// A nil iterator means a closed shard with nothing left after pos: Run ends the shard.
			return out.ShardIterator, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case isTrimmed(err):
			r.trimmed(r.Log, pos)
			pos = TrimHorizon
			continue
		case isNotFound(err):
			return nil, fmt.Errorf("get shard iterator for %s at %s: %w: %w", r.ShardID, pos, ErrShardGone, err)
		}
		if r.Log != nil && !isThrottled(err) {
			r.Log.Warn("get shard iterator failed; retrying", zap.Stringer("position", pos), zap.Int("attempt", attempt), zap.Error(err))
		}
		if !sleep(ctx, timer, r.Backoff(attempt)) {
			return nil, ctx.Err()
		}
	}
}

// sleep waits d or until ctx is done, reusing timer (which must be stopped). It reports
// whether the full wait passed.
func sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop() // since Go 1.23 no stale tick can be received after Stop: no drain needed
		return false
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// trimmed reports a position the stream has trimmed away; reading restarts at TRIM_HORIZON. Only a
// position past the horizon loses records: an iterator at TRIM_HORIZON itself can be refused as
// trimmed while the horizon moves (DynamoDB Local does so on a fresh stream), and then nothing is
// lost, so it is neither counted nor reported as a loss.
func (r *Reader) trimmed(log *zap.Logger, pos Position) {
	if pos.Type == TrimHorizon.Type {
		if log != nil {
			log.Debug("the stream's horizon moved while reading from it; restarting at TRIM_HORIZON")
		}
		return
	}
	r.Observer.Trimmed()
	if log != nil {
		log.Warn("position trimmed from the stream; restarting at TRIM_HORIZON: records in between are lost",
			zap.Stringer("position", pos))
	}
}
