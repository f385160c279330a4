package checkpoint

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/poller-dev/poller/internal/streamstest"
)

// writesByKind counts the UpdateItem calls made through it by the kind of item written (the key's
// prefix: "shard#", "worker#").
type writesByKind struct {
	DynamoAPI
	mu    sync.Mutex
	kinds map[string]int
}

func (w *writesByKind) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	key, _ := in.Key[attrKey].(*types.AttributeValueMemberS)
	w.mu.Lock()
	if w.kinds == nil {
		w.kinds = map[string]int{}
	}
	if key != nil {
		w.kinds[key.Value[:strings.Index(key.Value, "#")+1]]++
	}
	w.mu.Unlock()
	return w.DynamoAPI.UpdateItem(ctx, in, o...)
}

// take returns the writes counted since the last take and resets the count.
func (w *writesByKind) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.kinds
	w.kinds = nil
	if got == nil {
		got = map[string]int{}
	}
	return got
}

// TestBeat: a worker's first heartbeat and one after an outside change of its item are not clean; a
// heartbeat that finds the item as its own last one left it is; a take over the heartbeat and a
// removal of the item are outside changes.
func TestBeat(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := t.Context()
	beat := func(prev Beat, wantClean bool) Beat {
		t.Helper()
		b, clean, err := s.Beat(ctx, pipe, "w", prev)
		if err != nil || clean != wantClean || b.Counter <= prev.Counter {
			t.Fatalf("Beat(%+v) = %+v, clean %v, %v; want a later counter, clean %v", prev, b, clean, err, wantClean)
		}
		return b
	}
	b := beat(Beat{}, false)
	b = beat(b, true)
	b = beat(b, true)

	l := created(t, s, Lease{ShardID: "s"})
	l = mustGet(t, s, took(t, s, l, "w").Lease().ShardID)
	l.OwnerBeat = b.Counter
	took(t, s, l, "thief")
	b = beat(b, false)
	if b.Takes != 1 {
		t.Fatalf("Takes after a take over the heartbeat = %d, want 1", b.Takes)
	}
	b = beat(b, true)

	if ok, err := s.DeleteWorker(ctx, Worker{Pipeline: pipe, ID: "w", Counter: b.Counter}); !ok || err != nil {
		t.Fatalf("DeleteWorker() = %v, %v", ok, err)
	}
	b = beat(b, false)
	beat(b, true)
	_, workers, err := s.List(ctx, pipe)
	if err != nil || len(workers) != 1 || !workers[0].Vouches() {
		t.Fatalf("List() workers = %+v, %v; want one that vouches for its leases", workers, err)
	}

	// An older version with the same worker ID beats as it always did: ADD counter 1.
	if _, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: itemKey(pipe, workerKey("w")),
		UpdateExpression:          aws.String("ADD #c :one"),
		ExpressionAttributeNames:  map[string]string{"#c": attrCounter},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, workers, err = s.List(ctx, pipe); err != nil || len(workers) != 1 || workers[0].Vouches() {
		t.Fatalf("List() workers after an older version's heartbeat = %+v, %v; want one that vouches for nothing", workers, err)
	}
}

// TestTakeOverBeat: a lease whose owner vouches for it is taken over the owner's heartbeat counter as
// observed, and only then: once the owner beat since, or the lease was written since, nothing is
// written.
func TestTakeOverBeat(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := t.Context()
	first, _, err := s.Beat(ctx, pipe, "owner", Beat{})
	if err != nil {
		t.Fatal(err)
	}
	held := took(t, s, created(t, s, Lease{ShardID: "s"}), "owner")
	listed := mustGet(t, s, "s")

	// The owner beat since the lease was observed: the take is refused, the lease is still the owner's.
	next, _, err := s.Beat(ctx, pipe, "owner", first)
	if err != nil {
		t.Fatal(err)
	}
	stale := listed
	stale.OwnerBeat = first.Counter
	if h, ok, err := s.Take(ctx, stale, "thief"); ok || err != nil || h != nil {
		t.Fatalf("Take over a heartbeat that moved = %v, %v, want refused", ok, err)
	}
	if got := mustGet(t, s, "s"); got.Owner != "owner" || got.Counter != listed.Counter {
		t.Fatalf("lease after a refused take = owner %q counter %d, want owner's, %d", got.Owner, got.Counter, listed.Counter)
	}

	// The lease was written since: refused too, and the heartbeat item is left alone.
	if ok, err := held.Renew(ctx); !ok || err != nil {
		t.Fatalf("Renew() = %v, %v", ok, err)
	}
	stale.OwnerBeat = next.Counter
	if _, ok, err := s.Take(ctx, stale, "thief"); ok || err != nil {
		t.Fatalf("Take of a lease written since = %v, %v, want refused", ok, err)
	}
	if _, clean, err := s.Beat(ctx, pipe, "owner", next); !clean || err != nil {
		t.Fatalf("the owner's Beat after refused takes: clean %v, %v; want clean", clean, err)
	}

	// Both as observed: taken, and the Held is the lease as written.
	_, workers, err := s.List(ctx, pipe)
	if err != nil {
		t.Fatal(err)
	}
	current := mustGet(t, s, "s")
	current.OwnerBeat = workers[0].Counter
	h, ok, err := s.Take(ctx, current, "thief")
	if !ok || err != nil {
		t.Fatalf("Take over a still heartbeat = %v, %v, want taken", ok, err)
	}
	got := mustGet(t, s, "s")
	if got.Owner != "thief" || got.Takeovers != 1 || h.Lease().Counter != got.Counter || h.Lease().Owner != "thief" {
		t.Fatalf("lease after the take = %+v, Held's = %+v; want the thief's, one takeover, the same counter", got, h.Lease())
	}
	if ok, err := held.Renew(ctx); ok || err != nil {
		t.Fatalf("the former owner's Renew() = %v, %v, want lost", ok, err)
	}
}

// TestTrackerJudgesAVouchingOwnerByItsHeartbeat: a lease of an owner that vouches for its leases
// expires only once its counter and its owner's heartbeat both stood still for lease_duration; an
// owner of an older protocol is judged by the lease's counter alone.
func TestTrackerJudgesAVouchingOwnerByItsHeartbeat(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Second
	t0 := time.Unix(1_000_000, 0)
	lease := func(owner string) Lease { return Lease{ShardID: "s-" + owner, Owner: owner, Counter: 7} }
	tests := []struct {
		name      string
		worker    Worker
		beatAgain bool // the worker's counter moves at every observation
		wantBeat  int64
		expired   bool
	}{
		{"vouching owner beating", Worker{ID: "a", Counter: 3, Protocol: ProtocolVouch, VouchedCounter: 3}, true, 0, false},
		{"vouching owner still", Worker{ID: "a", Counter: 3, Protocol: ProtocolVouch, VouchedCounter: 3}, false, 3, true},
		{"old owner beating", Worker{ID: "a", Counter: 3}, true, 0, true},
		{"owner without an item", Worker{ID: "other", Counter: 3, Protocol: ProtocolVouch, VouchedCounter: 3}, true, 0, true},
		// An older version beat over the item of a vouching worker (its ID reused after a rollback).
		{"older version over a vouching item", Worker{ID: "a", Counter: 3, Protocol: ProtocolVouch, VouchedCounter: 2}, true, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(d)
			var v View
			for i := range 6 {
				w := tc.worker
				if tc.beatAgain {
					w.Counter += int64(i)
					if w.VouchedCounter == tc.worker.Counter {
						w.VouchedCounter = w.Counter // a heartbeat of protocol 2 writes both
					}
				}
				v = tr.Observe(t0.Add(time.Duration(i)*d/4), []Lease{lease("a")}, []Worker{w})
			}
			if got := len(v.Expired) == 1; got != tc.expired {
				t.Fatalf("expired after %v = %v, want %v", 5*d/4, got, tc.expired)
			}
			if tc.expired && v.Expired[0].OwnerBeat != tc.wantBeat {
				t.Fatalf("OwnerBeat = %d, want %d", v.Expired[0].OwnerBeat, tc.wantBeat)
			}
		})
	}
}

// vouchRound is one round of c: renewals, then the heartbeat and the listing, then the balance.
func vouchRound(t *testing.T, c *Coordinator) Moves {
	t.Helper()
	c.Renew(t.Context())
	return listAndBalance(t, c)
}

// TestVouchedLeasesAreNotRenewed: while every worker vouches for its leases, a caught-up lease is
// kept by the heartbeat alone: no lease write at rest, and another worker never takes it although its
// counter stands still. A shard with records not done is renewed still (its lag is kept current in
// the table). A worker item of an older protocol brings every renewal back.
func TestVouchedLeasesAreNotRenewed(t *testing.T) {
	t.Parallel()
	w := &writesByKind{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { w.DynamoAPI = api; return w })
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	cfg := CoordinatorConfig{LeaseDuration: 10 * time.Second, RenewInterval: 2 * time.Second, Clock: clock.Now}
	a, grants := holdingWith(t, s, 4, cfg)
	for id, g := range grants {
		if id == "shard-003" {
			g.Held.ReportAge(clock.Now().Add(-time.Minute)) // behind: records not done yet
		} else {
			g.Held.ReportAge(time.Time{})
		}
	}
	// Another worker judges the table as it is listed each round.
	judge := NewTracker(cfg.LeaseDuration)
	w.take()
	for round := range 15 { // 30 s: three lease_durations
		clock.Advance(2 * time.Second)
		vouchRound(t, a)
		leases, workers, err := s.List(t.Context(), pipe)
		if err != nil {
			t.Fatal(err)
		}
		if v := judge.Observe(clock.Now(), leases, workers); len(v.Expired) > 0 {
			t.Fatalf("round %d: another worker judges %d leases expired, want none: every lease is kept by a's heartbeat", round+1, len(v.Expired))
		}
	}
	got := w.take()
	// shard-003 is renewed every other round (ages 4, 8, ...), the other three never; a beats every
	// round.
	if want := map[string]int{"shard#": 7, "worker#": 15}; got["shard#"] != want["shard#"] || got["worker#"] != want["worker#"] {
		t.Fatalf("writes over 15 rounds = %v, want %v", got, want)
	}
	for id, g := range grants {
		if _, owned, err := g.Fence.Check(t.Context()); !owned || err != nil {
			t.Fatalf("Check(%s) = %v, %v, want owned", id, owned, err)
		}
	}

	// A worker of an older version joins: it judges leases by their counters alone.
	if _, err := s.api.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: map[string]types.AttributeValue{
		attrPipeline: &types.AttributeValueMemberS{Value: pipe}, attrKey: &types.AttributeValueMemberS{Value: workerKey("old")},
		"worker_id": &types.AttributeValueMemberS{Value: "old"}, attrCounter: &types.AttributeValueMemberN{Value: "1"},
	}}); err != nil {
		t.Fatal(err)
	}
	w.take()
	for range 3 {
		clock.Advance(2 * time.Second)
		vouchRound(t, a)
	}
	if got := w.take()["shard#"]; got < 4 {
		t.Fatalf("lease writes in the 3 rounds after an old worker joined = %d, want every lease renewed (>= 4)", got)
	}
}

// TestATakeOverTheHeartbeatEndsItsVouching: a worker that stood still for lease_duration (paused)
// loses its leases to one that takes them over its heartbeat; when it wakes up, its heartbeat finds
// the take, vouches for none of its leases, not even at its later clean heartbeats, and its fences
// let no call out for the leases taken.
func TestATakeOverTheHeartbeatEndsItsVouching(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	cfg := CoordinatorConfig{LeaseDuration: 10 * time.Second, RenewInterval: 2 * time.Second, Clock: clock.Now}
	a, grants := holdingWith(t, s, 2, cfg)
	for _, g := range grants {
		g.Held.ReportAge(time.Time{})
	}
	clock.Advance(2 * time.Second)
	vouchRound(t, a) // a beats clean, and vouches from now on

	cfg.Store, cfg.Pipeline, cfg.WorkerID = s, pipe, "b"
	b := NewCoordinator(cfg)
	var taken []string
	for range 8 { // a is paused
		clock.Advance(2 * time.Second)
		for _, g := range vouchRound(t, b).Start {
			taken = append(taken, g.Held.Lease().ShardID)
		}
	}
	if slices.Sort(taken); len(taken) != 2 {
		t.Fatalf("b took %v while a was paused, want both leases", taken)
	}
	for _, id := range taken {
		if l := mustGet(t, s, id); l.Owner != "b" {
			t.Fatalf("lease %s: owner %q, want b", id, l.Owner)
		}
	}

	// a wakes up: its heartbeat finds the take and vouches for nothing (the fences keep the
	// confirmations they had), and the fences let no call out.
	before := map[string]time.Time{}
	for id, g := range grants {
		before[id] = g.Fence.Confirmed()
	}
	if _, err := a.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	for id, g := range grants {
		if got := g.Fence.Confirmed(); !got.Equal(before[id]) {
			t.Fatalf("lease %s confirmed at %v by the heartbeat after the take, want still %v", id, got, before[id])
		}
		if _, owned, err := g.Fence.Check(t.Context()); owned || err != nil {
			t.Fatalf("Check(%s) after waking = %v, %v; want not owned", id, owned, err)
		}
	}
}

// TestHeartbeatsRunApartFromTheRounds: once started, the heartbeats go on every renew_interval with
// no round at all (a long round must not make a live worker look gone), keep vouching for the
// caught-up leases, and end with stop.
func TestHeartbeatsRunApartFromTheRounds(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	a, grants := holdingWith(t, s, 2, CoordinatorConfig{LeaseDuration: 2 * time.Second, RenewInterval: 50 * time.Millisecond})
	for _, g := range grants {
		g.Held.ReportAge(time.Time{})
	}
	a.Renew(t.Context()) // publishes the leases held
	if _, err := a.List(t.Context()); err != nil {
		t.Fatal(err)
	}
	beats := func() int64 {
		t.Helper()
		_, workers, err := s.List(t.Context(), pipe)
		if err != nil || len(workers) != 1 {
			t.Fatalf("List() workers = %v, %v", workers, err)
		}
		return workers[0].Counter
	}
	from, since := beats(), time.Now()
	stop := a.StartHeartbeats(t.Context())
	for deadline := time.Now().Add(30 * time.Second); beats() < from+5; {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("heartbeat counter %d 30 s after start, want %d or more", beats(), from+5)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	for id, g := range grants {
		if got := g.Fence.Confirmed(); !got.After(since) {
			t.Fatalf("lease %s last confirmed at %v, before the heartbeats started (%v): not vouched for", id, got, since)
		}
	}
	after := beats()
	time.Sleep(200 * time.Millisecond)
	if got := beats(); got != after {
		t.Fatalf("heartbeat counter went from %d to %d after stop", after, got)
	}
}

// TestLateRoundsAreBehind: with the heartbeats on their own goroutine, a round (List) that came over
// half a lease_duration after the one before is reported behind to the Pace, as renewals behind are.
func TestLateRoundsAreBehind(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	clock := streamstest.NewManualClock(time.Unix(1_000_000, 0))
	p := &paceSeen{}
	cfg := CoordinatorConfig{Store: s, Pipeline: pipe, WorkerID: "me", LeaseDuration: 10 * time.Second,
		RenewInterval: time.Hour, Clock: clock.Now, Pace: p}
	for _, late := range []bool{false, true} {
		c := NewCoordinator(cfg)
		if _, err := c.List(t.Context()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
		if late {
			clock.Advance(4 * time.Second)
		}
		if _, err := c.List(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.behind = nil
		c.StartHeartbeats(t.Context())() // one beat, told to the Pace, then stop
		if len(p.behind) != 1 || p.behind[0] != late {
			t.Fatalf("a round %v after the last: Pace told %v, want [%v]", map[bool]string{false: "2 s", true: "6 s"}[late], p.behind, late)
		}
	}
}
