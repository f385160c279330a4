package shards

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/wait"
)

// ReadAPI is the part of the DynamoDB Streams API that a Reader uses; *dynamodbstreams.Client
// satisfies it.
type ReadAPI interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Position is where reading starts: TRIM_HORIZON, LATEST, or after a sequence number.
type Position struct {
	// Type is the iterator type: TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER.
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

// String returns the type, and the sequence number if any, for logs.
func (p Position) String() string {
	if p.Seq == "" {
		return string(p.Type)
	}
	return string(p.Type) + " " + p.Seq
}

// Page is what one GetRecords call gave: records in sequence-number order, and whether the shard is
// now read to its end (closed, and no record left).
type Page struct {
	// Records are the page's records, in sequence-number order; possibly none (the shard is caught
	// up: iterator age 0).
	Records []types.Record
	// End is set on the last page of a closed shard read to its end; Run returns after sending it.
	End bool
	// ReadAt is when the answer arrived, for iterator age.
	ReadAt time.Time
	// Bytes is what the reader charged to its Memory for the page (PageBytes of its records); the
	// consumer releases it once it has accounted for the records its own way.
	Bytes int64
	// Next is the iterator after this page ("" at the end): a position another reader may start
	// from (Reader.StartIterator) within the iterator's 15 minutes.
	Next string
}

// Hooks is told what the reader did, for metrics. Calls come from the reader's goroutine and must
// not block. *hooks.Set satisfies it; a nil Hooks calls nothing.
type Hooks interface {
	// OnGetRecords counts one GetRecords call by result: hooks.ResultOK, ResultThrottled or
	// ResultError.
	OnGetRecords(shardID, result string)
	// OnTrimmed counts a position lost to the stream's 24-hour trimming: reading restarted at
	// TRIM_HORIZON, so records between the lost position and the new horizon were never read.
	OnTrimmed(shardID string)
	// OnMemoryWait counts a GetRecords call held back until the shard's (or the process's) byte
	// budget allows it; it is called when the wait begins.
	OnMemoryWait(shardID string)
}

// noHooks is the Hooks of a Reader given none.
type noHooks struct{}

func (noHooks) OnGetRecords(string, string) {}
func (noHooks) OnTrimmed(string)            {}
func (noHooks) OnMemoryWait(string)         {}

// Reader reads one shard. Fields are immutable after Run starts.
type Reader struct {
	// API makes the GetShardIterator and GetRecords calls.
	API ReadAPI
	// StreamARN and ShardID name the shard to read.
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
	// IdlePollInterval, if above PollInterval, is the cadence an idle shard backs off to: after a
	// few empty pages in a row the wait doubles up to it, and the first page with records brings
	// it back to PollInterval (pollWait). 0 polls at PollInterval always.
	IdlePollInterval time.Duration
	// Stagger, if set, gives an extra wait (below its argument, PollInterval) added once, to the
	// first wait after a page that was not full. Readers started together (a process's start, a
	// failover, a rebalance) would otherwise poll in step for good, since each waits PollInterval
	// after its call: every 250 ms all their calls at once, as many connections kept as there are
	// shards, and a burst of work where an even spread would do. RandomStagger spreads them over the
	// interval; nil adds nothing.
	Stagger func(poll time.Duration) time.Duration
	// Pace, if set, stretches each wait after a page that was not full: a process whose lease
	// renewals fall behind polls less often until they keep up (pace.Governor.Stretch). nil keeps the
	// waits as they are.
	Pace func(wait time.Duration) time.Duration
	// Limit is GetRecords' Limit, 1..1000.
	Limit int32
	// Backoff gives the wait before retry number attempt (1, 2, ...) after a throttle or error.
	Backoff func(attempt int) time.Duration
	// Hooks is told of each GetRecords call, trimmed position and memory wait; nil means none.
	Hooks Hooks
	// Memory, if not nil, is the shard's byte budget: each GetRecords call waits until it allows
	// reading and asks for no more records than its room holds (at the size of the largest record
	// of the last page, and at least one), and each page is charged to it (Page.Bytes) before it
	// is passed on. Until the shard's record size is known the reader asks for one record (a
	// probe), which it sends with the next page, not alone: a batch is never cut short by it.
	Memory Memory
	// Log receives the reader's retries and losses, scoped by the caller (shard ID); nil means none.
	Log *zap.Logger
}

// Memory is the part of a shard's byte budget the reader uses; *membudget.Account satisfies it.
type Memory interface {
	// Full reports that Wait would wait.
	Full() bool
	// Wait returns once the shard may read more, or ctx.Err().
	Wait(ctx context.Context) error
	// Room is how many bytes the shard may still read before it must wait.
	Room() int64
	// Charge counts n more bytes as read; the page's consumer releases them.
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
	l := &readLoop{r: r, out: out, log: r.logger(), hooks: r.hooks(), timer: wait.NewTimer(),
		pos: r.Start, borrowed: r.StartIterator != "", iter: aws.String(r.StartIterator)}
	defer l.timer.Stop()
	if !l.borrowed {
		if err := l.renew(ctx); err != nil {
			return err
		}
	}
	for {
		if done, err := l.step(ctx); done || err != nil {
			return err
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

// Iterator asks for an iterator at pos, retrying like Run does: "" means a closed shard with nothing
// after pos. A caller that must know when a position was taken (LATEST: "the tip now") asks for it
// here and passes it to Run as StartIterator.
func (r *Reader) Iterator(ctx context.Context, pos Position) (string, error) {
	it, err := r.iterator(ctx, pos)
	return aws.ToString(it), err
}

// iterator gets a shard iterator at pos, retrying throttles and errors with backoff (nil: a closed
// shard with nothing after pos). A trimmed position restarts at TRIM_HORIZON.
func (r *Reader) iterator(ctx context.Context, pos Position) (*string, error) {
	timer := wait.NewTimer()
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
		if err := wait.Until(ctx, nil, timer, r.Backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

func (r *Reader) logger() *zap.Logger {
	if r.Log == nil {
		return zap.NewNop()
	}
	return r.Log
}

func (r *Reader) hooks() Hooks {
	if r.Hooks == nil {
		return noHooks{}
	}
	return r.Hooks
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
	r.hooks().OnTrimmed(r.ShardID)
	if log != nil {
		log.Warn("position trimmed from the stream; restarting at TRIM_HORIZON: records in between are lost",
			zap.Stringer("position", pos))
	}
}
