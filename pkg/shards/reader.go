package shards

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	Log      *zap.Logger
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
	for {
		if iter == nil {
			select {
			case out <- Page{End: true, ReadAt: time.Now()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		res, err := r.API.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(r.Limit)})
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
				r.Observer.Trimmed()
				log.Warn("position trimmed from the stream; restarting at TRIM_HORIZON: records in between are lost",
					zap.Stringer("position", pos))
				pos = TrimHorizon
				if iter, err = r.iterator(ctx, pos); err != nil {
					return err
				}
				continue
			case isNotFound(err):
				r.Observer.GetRecords("error")
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
		page := Page{Records: r.wellFormed(res.Records, log), End: res.NextShardIterator == nil, ReadAt: time.Now(),
			Next: aws.ToString(res.NextShardIterator)}
		if n := len(page.Records); n > 0 {
			pos = After(aws.ToString(page.Records[n-1].Dynamodb.SequenceNumber))
		}
		// Empty pages are sent too: they tell the consumer the shard is caught up (iterator age 0).
		select {
		case out <- page:
		case <-ctx.Done():
			return ctx.Err()
		}
		if page.End {
			return nil
		}
		iter = res.NextShardIterator
		if !full(res.Records, r.Limit) {
			if !sleep(ctx, timer, r.PollInterval) {
				return ctx.Err()
			}
		}
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
			r.Observer.Trimmed()
			if r.Log != nil {
				r.Log.Warn("position trimmed from the stream; restarting at TRIM_HORIZON: records in between are lost",
					zap.Stringer("position", pos))
			}
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

// Backoff returns the house backoff: exponential from base, capped at max, with full jitter on the
// upper half so that many shards throttled together do not retry in step.
func Backoff(base, max time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := min(base, max)
		for i := 1; i < attempt && d < max; i++ {
			if d > max/2 { // doubling would pass max, or overflow when max is near the largest Duration
				d = max
				break
			}
			d *= 2
		}
		if d <= 0 {
			return 0
		}
		return d/2 + rand.N(d/2+1)
	}
}
