package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
)

type heldState int

const (
	stateHeld heldState = iota
	stateLost
	stateReleased
	stateFinished
)

// Held is a lease this worker holds, shared by its renew ticker and the shard's checkpointing.
//
// Its writes are serialized, one at a time, and each is conditional on owner = this worker AND
// counter = the counter of its own last write: concurrent Renew and Checkpoint calls never fail
// because of each other, and a worker whose lease was taken (it was paused, partitioned, slow) can
// never write for it again. Once a write finds the lease taken, the Held is lost for good and every
// call returns (false, nil) without calling DynamoDB; after Release or Finish it is no longer held
// either.
//
// Invariant: the stored checkpoint is the end of the contiguous delivered prefix of the shard. Callers
// pass the sequence number below which (inclusive) every record was delivered, and Held refuses to
// move it backwards. Held knows the stored checkpoint exactly, because the item cannot change without
// its counter moving.
//
// A write whose answer was lost (timeout, canceled ctx, broken connection, or an SDK retry of a request
// that had landed) may still have changed the item. Held counts such writes; when a later write fails
// its condition on an item that still names this worker as owner, with a counter no further ahead than
// those writes, the item's state is Held's own doing (only the owner writes while it owns), so Held
// adopts it and retries once.
type Held struct {
	store                    *Store
	owner, pipeline, shardID string // immutable

	// turn has one slot, held for the whole of a write; waiting for it can be canceled.
	// Lock order: turn, then mu.
	turn chan struct{}
	// unknown counts the writes, since the last known state, whose answer was lost. Guarded by turn.
	unknown int64

	mu    sync.Mutex // guards lease and state for readers; both are written holding turn and mu
	lease Lease
	state heldState

	// confirm, when set, is told when each write that keeps the lease held (a renewal, a checkpoint, a
	// pin) was sent, once it succeeded: the write bumped the counter, so no other worker may take the
	// lease for lease_duration from then, as after a renewal. clock times it (the monotonic clock).
	// Set by observe before the Held is shared; immutable after.
	confirm func(sent time.Time)
	clock   func() time.Time

	// since is the creation time the shard's iterator age is measured from, as last reported
	// (ReportAge): nil while unknown, the zero time when caught up.
	since atomic.Pointer[time.Time]
}

// ReportAge records since, the creation time of the oldest record of the shard not yet done (the
// zero time: every record read is done): each later write that keeps the lease stores the iterator
// age it implies (iterator_age, seconds), so that `poller status` shows lag from the table alone.
// Safe for concurrent use.
func (h *Held) ReportAge(since time.Time) { h.since.Store(&since) }

// withAge adds the iterator age to a write at now: set while the lease stays held and an age was
// reported, removed when the write gives the lease up (nobody reports for it then).
func (h *Held) withAge(ub expression.UpdateBuilder, now time.Time, keeps bool) expression.UpdateBuilder {
	if !keeps {
		return ub.Remove(expression.Name(attrIteratorAge))
	}
	since := h.since.Load()
	if since == nil {
		return ub
	}
	age := 0.0
	if !since.IsZero() {
		age = max(0, now.Sub(*since).Round(time.Millisecond).Seconds())
	}
	return ub.Set(expression.Name(attrIteratorAge), expression.Value(age))
}

// caughtUp says whether the shard's last iterator age report (ReportAge) was the zero time: every
// record read was done.
func (h *Held) caughtUp() bool {
	since := h.since.Load()
	return since != nil && since.IsZero()
}

func newHeld(s *Store, l Lease, owner string) *Held {
	return &Held{store: s, owner: owner, pipeline: l.Pipeline, shardID: l.ShardID, turn: make(chan struct{}, 1), lease: l}
}

// observe tells confirm when each successful write that keeps the lease held was sent, on clock (see
// Held.confirm). Call it before the Held is shared.
func (h *Held) observe(clock func() time.Time, confirm func(sent time.Time)) {
	h.clock, h.confirm = clock, confirm
}

// Lease returns the lease as of this Held's last known write. Its Counter is the fencing token of the
// holder.
func (h *Held) Lease() Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.lease
	l.Parents = slices.Clone(l.Parents)
	return l
}

// Owned says whether this worker still holds the lease as far as it knows: no write found it taken,
// and it was not released or finished.
func (h *Held) Owned() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state == stateHeld
}

// Renew bumps the lease counter so that observers see the lease alive. (false, nil): the lease is no
// longer held. Call it every renew_interval. Calls: one UpdateItem (two after a lost answer).
func (h *Held) Renew(ctx context.Context) (bool, error) {
	return h.do(ctx, write{
		op:     "renew",
		update: func(_ Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) { return ub, nil },
		landed: func(Lease) bool { return true },
		after:  stateHeld,
	})
}

// Checkpoint stores seq, the sequence number of the last record of the contiguous delivered prefix, and
// renews the lease. A seq below the current checkpoint is refused with ErrBackwards, one that is not a
// sequence number with ErrBadSequence; an equal one is written again. (false, nil): the lease is no
// longer held, nothing was written. Calls: one UpdateItem (two after a lost answer).
func (h *Held) Checkpoint(ctx context.Context, seq string) (bool, error) {
	if !validSeq(seq) {
		return false, h.errorf("checkpoint", fmt.Errorf("%q: %w", seq, ErrBadSequence))
	}
	return h.do(ctx, write{
		op: "checkpoint",
		update: func(cur Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			if CompareSeq(seq, cur.Checkpoint) < 0 {
				return ub, fmt.Errorf("%w: %s is before %s", ErrBackwards, seq, cur.Checkpoint)
			}
			return ub.Set(expression.Name(attrCheckpoint), expression.Value(seq)), nil
		},
		landed: func(got Lease) bool { return CompareSeq(got.Checkpoint, seq) == 0 },
		after:  stateHeld,
	})
}

// PinStart stores where a LATEST lease's reading was resolved, before anything read from there is
// delivered: seq, the first record read (start_seq), or, when seq is "", at, the moment LATEST is
// about to be resolved (start_time). Once pinned, a restart, crash or handoff resumes from the pin
// instead of resolving LATEST again (which would skip every record written in between). A pin on a
// lease that has a checkpoint is pointless and refused; a start_seq is written only once. (false,
// nil): the lease is no longer held. Calls: one UpdateItem (two after a lost answer).
func (h *Held) PinStart(ctx context.Context, seq string, at time.Time) (bool, error) {
	if seq != "" && !validSeq(seq) {
		return false, h.errorf("pin start", fmt.Errorf("%q: %w", seq, ErrBadSequence))
	}
	if seq == "" && at.IsZero() {
		return false, h.errorf("pin start", errors.New("neither a sequence number nor a time"))
	}
	return h.do(ctx, write{
		op: "pin start",
		update: func(cur Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			switch {
			case cur.Checkpoint != "":
				return ub, fmt.Errorf("the lease has a checkpoint (%s) already", cur.Checkpoint)
			case cur.StartSeq != "" && cur.StartSeq != seq:
				return ub, fmt.Errorf("the start is pinned at %s already", cur.StartSeq)
			case seq != "":
				return ub.Set(expression.Name(attrStartSeq), expression.Value(seq)).Remove(expression.Name(attrStartIter)), nil
			}
			return ub.Set(expression.Name(attrStartTime), expression.Value(stamp(at))), nil
		},
		landed: func(got Lease) bool {
			if seq != "" {
				return got.StartSeq == seq
			}
			return got.StartTime.Equal(at)
		},
		after: stateHeld,
	})
}

// PinIterator stores iter, the shard iterator of a LATEST lease whose shard had no record read yet,
// before the lease is released or handed over: the next holder reads on from exactly there while the
// iterator is valid. Refused once the lease has a pinned start record or a checkpoint. (false, nil):
// the lease is no longer held. Calls: one UpdateItem (two after a lost answer).
func (h *Held) PinIterator(ctx context.Context, iter string) (bool, error) {
	if iter == "" {
		return false, h.errorf("pin iterator", errors.New("empty iterator"))
	}
	return h.do(ctx, write{
		op: "pin iterator",
		update: func(cur Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			if cur.Checkpoint != "" || cur.StartSeq != "" {
				return ub, fmt.Errorf("the lease is read past its start already")
			}
			return ub.Set(expression.Name(attrStartIter), expression.Value(iter)), nil
		},
		landed: func(got Lease) bool { return got.StartIterator == iter },
		after:  stateHeld,
	})
}

// Finish marks the shard fully delivered and frees the lease: finished = true, finished_at, no owner,
// and, when lastSeq is not empty, checkpoint = lastSeq (the shard's last record; same rules as
// Checkpoint). Children of the shard may start once it is finished. (false, nil): the lease is no
// longer held. Calls: one UpdateItem (two after a lost answer).
func (h *Held) Finish(ctx context.Context, lastSeq string) (bool, error) {
	if lastSeq != "" && !validSeq(lastSeq) {
		return false, h.errorf("finish", fmt.Errorf("%q: %w", lastSeq, ErrBadSequence))
	}
	return h.do(ctx, write{
		op: "finish",
		update: func(cur Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			if lastSeq != "" {
				if CompareSeq(lastSeq, cur.Checkpoint) < 0 {
					return ub, fmt.Errorf("%w: %s is before %s", ErrBackwards, lastSeq, cur.Checkpoint)
				}
				ub = ub.Set(expression.Name(attrCheckpoint), expression.Value(lastSeq))
			}
			return ub.Set(expression.Name(attrFinished), expression.Value(true)).
				Set(expression.Name(attrFinishedAt), expression.Value(stamp(h.store.now()))).
				Remove(expression.Name(attrOwner)).Remove(expression.Name(attrWantedBy)), nil
		},
		landed: func(got Lease) bool { return got.Finished && got.Owner == "" },
		after:  stateFinished,
	})
}

// Release frees the lease so that another worker may take it at once, without waiting for expiry:
// on a clean stop, checkpoint, then release. A pending request (wanted_by) is cleared with it.
// (false, nil): the lease was no longer held. Calls: one UpdateItem (two after a lost answer).
func (h *Held) Release(ctx context.Context) (bool, error) {
	return h.do(ctx, write{
		op: "release",
		update: func(_ Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			return ub.Remove(expression.Name(attrOwner)).Remove(expression.Name(attrWantedBy)), nil
		},
		landed: func(got Lease) bool { return got.Owner == "" },
		after:  stateReleased,
	})
}

// Handoff gives the lease to worker to, the one that asked for it (Store.Want): owner = to, wanted_by
// cleared, takeovers + 1. Call it after the shard's batches in flight finished and their checkpoint was
// written; to resumes from that checkpoint with no record delivered twice. The new owner confirms with
// Take (on the counter it observes), so a successor that died meanwhile costs one lease_duration, as
// any dead owner does. (false, nil): the lease was no longer held. Calls: one UpdateItem (two after a
// lost answer).
func (h *Held) Handoff(ctx context.Context, to string) (bool, error) {
	if to == "" || to == h.owner {
		return false, h.errorf("hand off", fmt.Errorf("successor %q: must be another worker", to))
	}
	return h.do(ctx, write{
		op: "hand off",
		update: func(_ Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error) {
			return ub.Set(expression.Name(attrOwner), expression.Value(to)).
				Remove(expression.Name(attrWantedBy)).
				Add(expression.Name(attrTakeovers), expression.Value(1)), nil
		},
		landed: func(got Lease) bool { return got.Owner == to },
		after:  stateReleased,
		to:     to,
	})
}

// write is one kind of conditional write on the held lease.
type write struct {
	op string // for error messages
	// update adds the write's changes to ub, given the lease as Held knows it, or refuses.
	update func(cur Lease, ub expression.UpdateBuilder) (expression.UpdateBuilder, error)
	// landed says whether got, an item written by this Held, already shows this write's effect.
	landed func(got Lease) bool
	// after is the state once the write succeeded.
	after heldState
	// to is the owner the write leaves when it gives the lease up: "" (release, finish) or the
	// successor (hand off). Unused while after is stateHeld.
	to string
}

func (h *Held) errorf(op string, err error) error {
	return fmt.Errorf("%s shard %s of pipeline %s: %w", op, h.shardID, h.pipeline, err)
}

// set records a known state of the lease. The caller holds turn.
func (h *Held) set(l Lease, st heldState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lease, h.state, h.unknown = l, st, 0
}

func (h *Held) lose() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state = stateLost
}

// do runs w: at most two conditional UpdateItem calls, the second only after adopting a write of ours
// whose answer was lost.
func (h *Held) do(ctx context.Context, w write) (bool, error) {
	select {
	case h.turn <- struct{}{}:
	case <-ctx.Done():
		return false, h.errorf(w.op, context.Cause(ctx))
	}
	defer func() { <-h.turn }()

	for range 2 {
		// lease and state change only under turn, which this goroutine holds.
		if h.state != stateHeld {
			return false, nil
		}
		cur := h.lease
		wall := h.store.now()
		ub := expression.Set(expression.Name(attrUpdatedAt), expression.Value(stamp(wall))).
			Add(expression.Name(attrCounter), expression.Value(1))
		ub = h.withAge(ub, wall, w.after == stateHeld)
		ub, err := w.update(cur, ub)
		if err != nil {
			return false, h.errorf(w.op, err)
		}
		cond := expression.Name(attrOwner).Equal(expression.Value(h.owner)).
			And(expression.Name(attrCounter).Equal(expression.Value(cur.Counter)))
		var sent time.Time
		if h.clock != nil {
			sent = h.clock()
		}
		item, ok, err := h.store.update(ctx, itemKey(h.pipeline, leaseKey(h.shardID)), ub, cond)
		if err != nil {
			h.unknown++
			return false, h.errorf(w.op, err)
		}
		if ok {
			got, err := decodeLease(item)
			if err != nil {
				h.unknown++
				return false, h.errorf(w.op, err)
			}
			h.set(got, w.after)
			if w.after == stateHeld && h.confirm != nil {
				// Only a write that succeeded outright: an adopted one may have landed before sent.
				h.confirm(sent)
			}
			return true, nil
		}
		if item == nil { // the item is gone
			h.lose()
			return false, nil
		}
		got, err := decodeLease(item)
		ours := err == nil && got.Counter > cur.Counter && got.Counter <= cur.Counter+h.unknown+1
		switch {
		case ours && got.Owner == h.owner:
			h.set(got, stateHeld)
			if w.landed(got) {
				return true, nil
			}
		case ours && w.after != stateHeld && got.Owner == w.to && w.landed(got):
			h.set(got, w.after)
			return true, nil
		default:
			h.lose()
			return false, nil
		}
	}
	// The retry with the adopted counter failed its condition on an item of ours without this write's
	// effect: nothing explains that but another writer using our worker ID. Stop writing.
	h.lose()
	return false, nil
}
