package shards

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/wait"
)

// readLoop is the state of one Run: where reading is, and what the retries and the memory budget
// have learnt so far. It belongs to Run's goroutine.
type readLoop struct {
	r     *Reader
	out   chan<- Page
	log   *zap.Logger
	hooks Hooks
	timer *time.Timer // reused by every wait of the loop

	pos       Position // after the last record read (Start before any)
	iter      *string  // the next GetRecords call's iterator; nil: the shard is read to its end
	borrowed  bool     // iter is the StartIterator, not yet used successfully
	attempt   int      // throttles and errors since the last page
	empty     int      // pages in a row without records, for pollWait
	expired   int      // expired iterators since the last page
	staggered bool     // the Reader's Stagger was added to a wait
	// perRecord is what the next page's records are expected to cost: the largest of the last page
	// with records, 0 before one was read. probe holds the records of a probe until the next page.
	perRecord int64
	probe     []types.Record
}

// step makes one GetRecords call and handles its answer. done reports that Run is over: the shard
// was read to its end (err nil) or reading failed for good (err).
func (l *readLoop) step(ctx context.Context) (done bool, err error) {
	if l.iter == nil {
		return true, l.sendEnd(ctx)
	}
	limit, err := l.limit(ctx)
	if err != nil {
		return true, err
	}
	res, err := l.r.API.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: l.iter, Limit: aws.Int32(limit)})
	if err != nil {
		err = l.failed(ctx, err)
		return err != nil, err
	}
	return l.read(ctx, res, limit)
}

// sendEnd passes on the End page of a shard that has nothing after pos.
func (l *readLoop) sendEnd(ctx context.Context) error {
	select {
	case l.out <- Page{End: true, ReadAt: time.Now()}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limit waits until the memory budget (if any) allows a GetRecords call, and returns the call's
// Limit: a probe of one record until the size of a record is known, then what the room holds.
func (l *readLoop) limit(ctx context.Context) (int32, error) {
	mem := l.r.Memory
	if mem == nil {
		return l.r.Limit, nil
	}
	if mem.Full() {
		l.hooks.OnMemoryWait(l.r.ShardID)
	}
	if err := mem.Wait(ctx); err != nil {
		return 0, err
	}
	if l.perRecord == 0 {
		return 1, nil // a probe
	}
	return pageLimit(l.r.Limit, mem.Room(), l.perRecord), nil
}

// failed handles a failed GetRecords call: nil to call again (with a new iterator, or after a
// backoff), or the error that ends Run.
func (l *readLoop) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case l.borrowed && !isThrottled(err):
		l.log.Info("a previous reader's iterator failed; starting at the position instead", zap.Stringer("position", l.pos), zap.Error(err))
		l.borrowed = false
		return l.renew(ctx)
	case isExpiredIterator(err):
		l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultError)
		l.log.Debug("shard iterator expired; renewing", zap.Stringer("position", l.pos))
		// One expiry is normal after a slow consumer: renew at once. A renewed iterator that
		// expires again before any page means something else is wrong: back off, not spin.
		l.expired++
		if l.expired > 1 {
			if err := wait.Until(ctx, nil, l.timer, l.r.Backoff(l.expired-1)); err != nil {
				return err
			}
		}
		return l.renew(ctx)
	case isTrimmed(err):
		l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultError)
		l.r.trimmed(l.log, l.pos)
		l.pos = TrimHorizon
		return l.renew(ctx)
	case isNotFound(err):
		l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultError)
		if len(l.probe) > 0 && !l.r.send(ctx, l.out, Page{Records: l.probe, ReadAt: time.Now()}) {
			return ctx.Err()
		}
		return fmt.Errorf("get records from shard %s: %w: %w", l.r.ShardID, ErrShardGone, err)
	}
	return l.backOff(ctx, err)
}

// backOff counts a throttle or an unclassified error and waits before the next attempt.
func (l *readLoop) backOff(ctx context.Context, err error) error {
	l.attempt++
	if isThrottled(err) {
		l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultThrottled)
		l.log.Debug("get records throttled", zap.Int("attempt", l.attempt))
	} else {
		l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultError)
		l.log.Warn("get records failed; retrying", zap.Int("attempt", l.attempt), zap.Error(err))
	}
	return wait.Until(ctx, nil, l.timer, l.r.Backoff(l.attempt))
}

// renew asks for a new iterator at pos.
func (l *readLoop) renew(ctx context.Context) error {
	var err error
	l.iter, err = l.r.iterator(ctx, l.pos)
	return err
}

// read handles a page GetRecords gave: it passes the page on (or holds a probe for the next one)
// and, after a page that was not full, waits PollInterval (longer on an idle shard: pollWait).
// done reports the shard's end (err nil) or ctx's (err).
func (l *readLoop) read(ctx context.Context, res *dynamodbstreams.GetRecordsOutput, limit int32) (done bool, err error) {
	l.attempt, l.expired, l.borrowed = 0, 0, false
	l.hooks.OnGetRecords(l.r.ShardID, hooks.ResultOK)
	recs := l.r.wellFormed(res.Records, l.log)
	if n := len(recs); n > 0 {
		l.pos = After(aws.ToString(recs[n-1].Dynamodb.SequenceNumber))
		if l.holdProbe(recs, res.NextShardIterator) {
			return false, nil
		}
	}
	page := Page{Records: append(l.probe, recs...), End: res.NextShardIterator == nil, ReadAt: time.Now(),
		Next: aws.ToString(res.NextShardIterator)}
	l.probe = nil
	// Empty pages are sent too: they tell the consumer the shard is caught up (iterator age 0).
	if !l.r.send(ctx, l.out, page) {
		return true, ctx.Err()
	}
	if page.End {
		return true, nil
	}
	l.iter = res.NextShardIterator
	if full(res.Records, limit) {
		return false, nil
	}
	l.empty++
	if len(page.Records) > 0 {
		l.empty = 0
	}
	err = wait.Until(ctx, nil, l.timer, l.pace(pollWait(l.r.PollInterval, l.r.IdlePollInterval, l.empty))+l.stagger())
	return err != nil, err
}

// pace is d stretched by the Reader's Pace, if any.
func (l *readLoop) pace(d time.Duration) time.Duration {
	if l.r.Pace == nil {
		return d
	}
	return l.r.Pace(d)
}

// stagger is the Reader's Stagger the first time, then 0.
func (l *readLoop) stagger() time.Duration {
	if l.staggered || l.r.Stagger == nil {
		return 0
	}
	l.staggered = true
	return l.r.Stagger(l.r.PollInterval)
}

// holdProbe learns a record's cost from a page with records under a memory budget, and keeps the
// records of a probe (the first such page) to send with the next page, so that a batch is never
// cut short by it. It reports whether it kept them; a probe that ends the shard is sent at once.
func (l *readLoop) holdProbe(recs []types.Record, next *string) bool {
	if l.r.Memory == nil {
		return false
	}
	wasProbe := l.perRecord == 0
	l.perRecord = largestRecord(recs)
	if wasProbe && next != nil {
		l.probe, l.iter = recs, next
		return true
	}
	return false
}
