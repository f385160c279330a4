package control

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
)

// Position is where `poller reset --to` moves checkpoints: TRIM_HORIZON, LATEST or a time.
type Position struct {
	Latest bool
	// Time, when set, is an RFC 3339 time: each shard restarts at its first record created at or
	// after it. Neither Latest nor Time: TRIM_HORIZON.
	Time time.Time
}

// ParsePosition reads TRIM_HORIZON, LATEST or an RFC 3339 time.
func ParsePosition(s string) (Position, error) {
	switch s {
	case "TRIM_HORIZON":
		return Position{}, nil
	case "LATEST":
		return Position{Latest: true}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Position{}, fmt.Errorf("--to must be TRIM_HORIZON, LATEST or an RFC 3339 time like 2026-11-28T10:00:00Z, got %q", s)
	}
	return Position{Time: t.UTC()}, nil
}

func (p Position) String() string {
	switch {
	case p.Latest:
		return "LATEST"
	case !p.Time.IsZero():
		return p.Time.Format(time.RFC3339Nano)
	}
	return "TRIM_HORIZON"
}

// Change is one lease a reset moved.
type Change struct {
	ShardID string
	// From is the checkpoint before ("" none), with Finished; To the new start.
	From     string
	Finished bool
	To       string
}

// ResetRequest is one `poller reset`.
type ResetRequest struct {
	Pipeline string
	// StreamARN is the configured stream, "" for a pipeline configured by table (the newest stream
	// its leases name is reset).
	StreamARN string
	To        Position
	// Shard, when set, resets that shard and its descendants only (a shard read again is followed by
	// its children read again, parents before children); else every lease of the stream.
	Shard string
	// Now is the time of the reset: a shard that waits for a parent skips the records created before
	// it on a reset to LATEST.
	Now time.Time
	// Settle is the renew_interval: a reset right after the pause first waits until that long after
	// the pause was written, so that every replica has seen it (by the control item's updated_at, the
	// pausing machine's clock: best effort) and none takes a reset lease before resume.
	Settle time.Duration
}

// resetAttempts is how many times Reset lists and writes again the leases whose write lost a race
// (a paused owner renews its leases every renew_interval).
const resetAttempts = 5

// Reset moves the checkpoints of a paused pipeline (refused with ErrRefused while it runs) and
// returns what it changed. Every lease it writes is freed: see checkpoint.Store.Reset.
func Reset(ctx context.Context, t Table, req ResetRequest) ([]Change, error) {
	ctl, err := t.Control(ctx, req.Pipeline)
	if err != nil {
		return nil, err
	}
	if !ctl.Paused {
		return nil, refused("pipeline %s is running: pause it first (poller pause --pipeline %s), reset, then resume", req.Pipeline, req.Pipeline)
	}
	if err := settle(ctx, req.Settle-req.Now.Sub(ctl.UpdatedAt)); err != nil {
		return nil, err
	}
	var (
		changes []Change
		todo    map[string]bool // the shards still to write; nil: not chosen yet
	)
	for range resetAttempts {
		leases, _, err := t.List(ctx, req.Pipeline)
		if err != nil {
			return changes, err
		}
		leases = ofStream(leases, cmp.Or(req.StreamARN, newestStream(leases)))
		if todo == nil {
			if todo, err = selectShards(leases, req.Shard); err != nil {
				return nil, err
			}
		}
		plan := resetPlan(leases, todo, req.To, req.Now)
		for _, l := range leases {
			s, ok := plan[l.ShardID]
			if !ok {
				continue
			}
			_, done, err := t.Reset(ctx, l, s.startAt, s.at)
			if err != nil {
				return changes, err
			}
			if done {
				delete(todo, l.ShardID)
				changes = append(changes, Change{ShardID: l.ShardID, From: l.Checkpoint, Finished: l.Finished, To: s.String()})
			}
		}
		if len(todo) == 0 {
			return changes, nil
		}
	}
	return changes, fmt.Errorf("reset pipeline %s: %d lease(s) kept changing under the reset (is a replica running it unpaused?)", req.Pipeline, len(todo))
}

// selectShards is the set a reset writes: every lease, or shard and its descendants.
func selectShards(leases []checkpoint.Lease, shard string) (map[string]bool, error) {
	all := map[string]bool{}
	for _, l := range leases {
		all[l.ShardID] = true
	}
	if shard == "" {
		return all, nil
	}
	if !all[shard] {
		return nil, refused("pipeline has no lease for shard %s (see poller status)", shard)
	}
	sel := map[string]bool{shard: true}
	for grew := true; grew; {
		grew = false
		for _, l := range leases {
			if !sel[l.ShardID] && slices.ContainsFunc(l.Parents, func(p string) bool { return sel[p] }) {
				sel[l.ShardID], grew = true, true
			}
		}
	}
	return sel, nil
}

// start is a lease's new start, as checkpoint.Store.Reset takes it.
type start struct {
	startAt string
	at      time.Time
}

func (s start) String() string {
	switch s.startAt {
	case checkpoint.StartLatest:
		return "LATEST"
	case checkpoint.StartAtTime:
		return "first record at or after " + s.at.Format(time.RFC3339Nano)
	}
	return "TRIM_HORIZON"
}

// resetPlan is the new start of each selected lease. TRIM_HORIZON and a time apply to every
// selected lease, finished ones included: they are read again, parents before children. LATEST
// leaves finished leases as they are (a closed shard has nothing after its end), moves the leases
// ready to read to their shard's tip, and has the ones waiting for an unfinished parent skip what
// was created before now: a child never starts at LATEST, which would skip the records written
// between its parent's end and the moment it is read.
func resetPlan(leases []checkpoint.Lease, sel map[string]bool, to Position, now time.Time) map[string]start {
	byID := make(map[string]checkpoint.Lease, len(leases))
	for _, l := range leases {
		byID[l.ShardID] = l
	}
	out := map[string]start{}
	for _, l := range leases {
		switch {
		case !sel[l.ShardID]:
		case !to.Time.IsZero():
			out[l.ShardID] = start{startAt: checkpoint.StartAtTime, at: to.Time}
		case !to.Latest:
			out[l.ShardID] = start{}
		case l.Finished:
		case slices.ContainsFunc(l.Parents, func(p string) bool { pl, ok := byID[p]; return ok && !pl.Finished }):
			out[l.ShardID] = start{startAt: checkpoint.StartAtTime, at: now}
		default:
			out[l.ShardID] = start{startAt: checkpoint.StartLatest}
		}
	}
	return out
}

// settle waits d (nothing when d <= 0) unless ctx ends first.
func settle(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the replicas to see the pause: %w", context.Cause(ctx))
	}
}
