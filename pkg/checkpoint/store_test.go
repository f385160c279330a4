package checkpoint

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const pipe = "congrats"

// get returns the lease of shardID as List reads it.
func get(t *testing.T, s *Store, pipeline, shardID string) (Lease, bool) {
	t.Helper()
	leases, _, err := s.List(t.Context(), pipeline)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	for _, l := range leases {
		if l.ShardID == shardID {
			return l, true
		}
	}
	return Lease{}, false
}

// mustGet is get for a lease that must exist.
func mustGet(t *testing.T, s *Store, shardID string) Lease {
	t.Helper()
	l, ok := get(t, s, pipe, shardID)
	if !ok {
		t.Fatalf("lease %s not listed", shardID)
	}
	return l
}

// created creates a lease and returns it as listed.
func created(t *testing.T, s *Store, l Lease) Lease {
	t.Helper()
	if l.Pipeline == "" {
		l.Pipeline = pipe
	}
	if ok, err := s.Create(t.Context(), l); !ok || err != nil {
		t.Fatalf("Create(%s) = %v, %v, want true, nil", l.ShardID, ok, err)
	}
	got, _ := get(t, s, l.Pipeline, l.ShardID)
	return got
}

// took takes l for owner and fails the test unless it was taken.
func took(t *testing.T, s *Store, l Lease, owner string) *Held {
	t.Helper()
	h, ok, err := s.Take(t.Context(), l, owner)
	if !ok || err != nil {
		t.Fatalf("Take(%s, %s) = %v, %v, want true, nil", l.ShardID, owner, ok, err)
	}
	return h
}

func TestCreate(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := t.Context()
	s.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }

	l := Lease{Pipeline: pipe, ShardID: "shardId-1", StreamARN: "arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
		Parents: []string{"shardId-0"}, Checkpoint: "000000000000000000042", Owner: "ignored", Finished: true}
	if ok, err := s.Create(ctx, l); !ok || err != nil {
		t.Fatalf("Create() = %v, %v, want true, nil", ok, err)
	}
	want := Lease{Pipeline: pipe, ShardID: "shardId-1", StreamARN: l.StreamARN, Parents: []string{"shardId-0"},
		Counter: 1, Checkpoint: "000000000000000000042", Finished: true, UpdatedAt: s.now()}
	if got := mustGet(t, s, "shardId-1"); !equalLease(got, want) {
		t.Fatalf("created lease = %+v, want %+v", got, want)
	}

	again := l
	again.Checkpoint, again.Parents = "99", nil
	if ok, err := s.Create(ctx, again); ok || err != nil {
		t.Fatalf("Create() of an existing lease = %v, %v, want false, nil", ok, err)
	}
	if got := mustGet(t, s, "shardId-1"); !equalLease(got, want) {
		t.Fatalf("lease after second Create = %+v, want it untouched: %+v", got, want)
	}

	bad := Lease{Pipeline: pipe, ShardID: "shardId-2", Checkpoint: "12a"}
	if _, err := s.Create(ctx, bad); !errors.Is(err, ErrBadSequence) {
		t.Fatalf("Create() with checkpoint 12a = %v, want ErrBadSequence", err)
	}
	if _, err := s.Create(ctx, Lease{ShardID: "x"}); err == nil {
		t.Fatalf("Create() without pipeline = nil, want an error")
	}
}

func equalLease(a, b Lease) bool {
	return a.Pipeline == b.Pipeline && a.ShardID == b.ShardID && a.StreamARN == b.StreamARN &&
		slices.Equal(a.Parents, b.Parents) && a.Owner == b.Owner && a.Counter == b.Counter &&
		a.Checkpoint == b.Checkpoint && a.Finished == b.Finished && a.FinishedAt.Equal(b.FinishedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && a.Takeovers == b.Takeovers
}

func TestTake(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	tests := []struct {
		name string
		// prepare returns the lease as the taker observed it.
		prepare       func(t *testing.T, shard string) Lease
		wantOK        bool
		wantTakeovers int64
	}{
		{
			name:    "a free lease is taken",
			prepare: func(t *testing.T, shard string) Lease { return created(t, s, Lease{ShardID: shard}) },
			wantOK:  true,
		},
		{
			name: "an expired lease of another worker is taken over and counted as a takeover",
			prepare: func(t *testing.T, shard string) Lease {
				took(t, s, created(t, s, Lease{ShardID: shard}), "paused-worker")
				return mustGet(t, s, shard)
			},
			wantOK:        true,
			wantTakeovers: 1,
		},
		{
			name: "a lease written since it was observed is not taken",
			prepare: func(t *testing.T, shard string) Lease {
				l := created(t, s, Lease{ShardID: shard})
				took(t, s, l, "other")
				return l
			},
		},
		{
			name: "a finished lease is not taken",
			prepare: func(t *testing.T, shard string) Lease {
				h := took(t, s, created(t, s, Lease{ShardID: shard}), "other")
				if ok, err := h.Finish(t.Context(), "5"); !ok || err != nil {
					t.Fatalf("Finish() = %v, %v", ok, err)
				}
				return mustGet(t, s, shard)
			},
		},
		{
			name:    "a lease that does not exist is not taken",
			prepare: func(t *testing.T, shard string) Lease { return Lease{Pipeline: pipe, ShardID: shard, Counter: 1} },
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shard := fmt.Sprintf("shardId-%d", i)
			l := tt.prepare(t, shard)
			h, ok, err := s.Take(t.Context(), l, "me")
			if err != nil || ok != tt.wantOK || (h != nil) != tt.wantOK {
				t.Fatalf("Take() = %v, %v, %v, want held=%v, nil", h, ok, err, tt.wantOK)
			}
			if !ok {
				if got, exists := get(t, s, pipe, shard); exists && got.Owner == "me" {
					t.Fatalf("a failed Take() left owner = me")
				}
				return
			}
			got := mustGet(t, s, shard)
			if got.Owner != "me" || got.Counter != l.Counter+1 || got.Takeovers != tt.wantTakeovers {
				t.Fatalf("taken lease = %+v, want owner me, counter %d, takeovers %d", got, l.Counter+1, tt.wantTakeovers)
			}
			if hl := h.Lease(); !equalLease(hl, got) || !h.Owned() {
				t.Fatalf("Held.Lease() = %+v (owned %v), want %+v", hl, h.Owned(), got)
			}
		})
	}
}

func TestTakeRace(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	const workers, rounds = 8, 5
	for round := range rounds {
		l := created(t, s, Lease{ShardID: fmt.Sprintf("shardId-%d", round)})
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
		)
		for w := range workers {
			wg.Go(func() {
				owner := fmt.Sprintf("worker-%d", w)
				_, ok, err := s.Take(t.Context(), l, owner)
				if err != nil {
					t.Errorf("Take() by %s = %v", owner, err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d workers took the lease (%v), want exactly 1", round, len(winners), winners)
		}
		if got := mustGet(t, s, l.ShardID); got.Owner != winners[0] || got.Counter != l.Counter+1 {
			t.Fatalf("round %d: lease = owner %s counter %d, want owner %s counter %d", round, got.Owner, got.Counter, winners[0], l.Counter+1)
		}
	}
}

// TestPausedWorker: a worker that was paused past lease_duration and whose lease was taken over can
// neither renew, checkpoint, finish nor release it, and does not touch the new owner's state.
func TestPausedWorker(t *testing.T) {
	t.Parallel()
	c := &counting{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { c.DynamoAPI = api; return c })
	ops := []struct {
		name string
		do   func(h *Held) (bool, error)
	}{
		{"a paused worker cannot renew", func(h *Held) (bool, error) { return h.Renew(t.Context()) }},
		{"a paused worker cannot checkpoint", func(h *Held) (bool, error) { return h.Checkpoint(t.Context(), "900") }},
		{"a paused worker cannot finish", func(h *Held) (bool, error) { return h.Finish(t.Context(), "900") }},
		{"a paused worker cannot release", func(h *Held) (bool, error) { return h.Release(t.Context()) }},
	}
	for i, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			paused := took(t, s, created(t, s, Lease{ShardID: fmt.Sprintf("shardId-%d", i)}), "paused")
			if ok, err := paused.Checkpoint(t.Context(), "100"); !ok || err != nil {
				t.Fatalf("Checkpoint() before the pause = %v, %v", ok, err)
			}
			// Another worker saw the counter stand still and takes the lease over.
			next := took(t, s, mustGet(t, s, paused.Lease().ShardID), "next")
			if ok, err := next.Checkpoint(t.Context(), "200"); !ok || err != nil {
				t.Fatalf("Checkpoint() by the new owner = %v, %v", ok, err)
			}
			want := mustGet(t, s, paused.Lease().ShardID)
			c.take()

			if ok, err := op.do(paused); ok || err != nil {
				t.Fatalf("%s: got %v, %v, want false, nil", op.name, ok, err)
			}
			if got := mustGet(t, s, want.ShardID); !equalLease(got, want) {
				t.Fatalf("lease after the paused worker's write = %+v, want the new owner's %+v", got, want)
			}
			if paused.Owned() {
				t.Fatalf("Owned() = true after the lease was found taken")
			}
			c.take()
			if ok, err := paused.Renew(t.Context()); ok || err != nil {
				t.Fatalf("Renew() of a lost Held = %v, %v, want false, nil", ok, err)
			}
			if calls := c.take(); len(calls) != 0 {
				t.Fatalf("a lost Held made calls %v, want none", calls)
			}
		})
	}
}

func TestCheckpointNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "me")
	steps := []struct {
		name    string
		seq     string
		wantErr error
		want    string // checkpoint stored afterwards
	}{
		{"a first 21-digit checkpoint is stored", "100000000000000000001", nil, "100000000000000000001"},
		{"a 22-digit sequence number moves it forward", "9000000000000000000001", nil, "9000000000000000000001"},
		{"a 21-digit number that sorts after it as a string is refused", "999999999999999999999", ErrBackwards, "9000000000000000000001"},
		{"the same number is accepted again", "9000000000000000000001", nil, "9000000000000000000001"},
		{"leading zeros do not make a number larger", "009000000000000000000000", ErrBackwards, "9000000000000000000001"},
		{"a 28-digit number moves it forward", "1000000000000000000000000000", nil, "1000000000000000000000000000"},
		{"a non-numeric checkpoint is refused", "1e30", ErrBadSequence, "1000000000000000000000000000"},
		{"an empty checkpoint is refused", "", ErrBadSequence, "1000000000000000000000000000"},
	}
	for _, st := range steps {
		ok, err := h.Checkpoint(t.Context(), st.seq)
		if !errors.Is(err, st.wantErr) || ok != (st.wantErr == nil) {
			t.Fatalf("%s: Checkpoint(%q) = %v, %v, want ok=%v, %v", st.name, st.seq, ok, err, st.wantErr == nil, st.wantErr)
		}
		if got := mustGet(t, s, "shardId-1").Checkpoint; got != st.want {
			t.Fatalf("%s: stored checkpoint = %s, want %s", st.name, got, st.want)
		}
	}
	if !h.Owned() {
		t.Fatalf("a refused checkpoint lost the lease")
	}
	if ok, err := h.Finish(t.Context(), "5"); ok || !errors.Is(err, ErrBackwards) {
		t.Fatalf("Finish(5) = %v, %v, want false, ErrBackwards", ok, err)
	}
}

func TestFinish(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	tests := []struct {
		name           string
		checkpoint     string
		lastSeq        string
		wantCheckpoint string
	}{
		{"finishing at the shard's last record stores it as the checkpoint", "10", "12", "12"},
		{"finishing without a last record keeps the checkpoint", "10", "", "10"},
		{"a shard that closed empty finishes without a checkpoint", "", "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shard := fmt.Sprintf("shardId-%d", i)
			h := took(t, s, created(t, s, Lease{ShardID: shard}), "me")
			if tt.checkpoint != "" {
				if ok, err := h.Checkpoint(t.Context(), tt.checkpoint); !ok || err != nil {
					t.Fatalf("Checkpoint() = %v, %v", ok, err)
				}
			}
			before := time.Now().Add(-time.Second)
			if ok, err := h.Finish(t.Context(), tt.lastSeq); !ok || err != nil {
				t.Fatalf("Finish(%q) = %v, %v, want true, nil", tt.lastSeq, ok, err)
			}
			got := mustGet(t, s, shard)
			if !got.Finished || got.Owner != "" || got.Checkpoint != tt.wantCheckpoint || got.FinishedAt.Before(before) {
				t.Fatalf("finished lease = %+v, want finished, no owner, checkpoint %q, finished_at set", got, tt.wantCheckpoint)
			}
			if h.Owned() {
				t.Fatalf("Owned() = true after Finish")
			}
			if ok, err := h.Renew(t.Context()); ok || err != nil {
				t.Fatalf("Renew() after Finish = %v, %v, want false, nil", ok, err)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "leaving")
	if ok, err := h.Checkpoint(t.Context(), "42"); !ok || err != nil {
		t.Fatalf("Checkpoint() = %v, %v", ok, err)
	}
	if ok, err := h.Release(t.Context()); !ok || err != nil {
		t.Fatalf("Release() = %v, %v, want true, nil", ok, err)
	}
	free := mustGet(t, s, "shardId-1")
	if free.Owner != "" || free.Checkpoint != "42" || free.Finished {
		t.Fatalf("released lease = %+v, want free with checkpoint 42", free)
	}
	// Another worker takes it at once, without waiting for lease_duration, and resumes at 42.
	next := took(t, s, free, "next")
	if got := next.Lease(); got.Checkpoint != "42" || got.Takeovers != 0 {
		t.Fatalf("taken lease = %+v, want checkpoint 42 and no takeover", got)
	}
	if ok, err := h.Renew(t.Context()); ok || err != nil {
		t.Fatalf("Renew() after Release = %v, %v, want false, nil", ok, err)
	}
	if ok, err := h.Release(t.Context()); ok || err != nil {
		t.Fatalf("second Release() = %v, %v, want false, nil", ok, err)
	}
}

func TestListPaginates(t *testing.T) {
	t.Parallel()
	c := &counting{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { c.DynamoAPI = api; return c })
	s.pageLimit = 40
	const n = 300
	// Written in batches straight to the table: Create is tested on its own, and 300 PutItems are slow.
	var batch []types.WriteRequest
	for i := range n {
		id := fmt.Sprintf("shardId-%04d", i)
		av, err := attributevalue.MarshalMap(leaseItem{Pipeline: pipe, Key: leaseKey(id), ShardID: id, Parents: []string{"p"}, Counter: 1})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: av}})
		if len(batch) == 25 || i == n-1 {
			out, err := client(t).BatchWriteItem(t.Context(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: batch}})
			if err != nil || len(out.UnprocessedItems) > 0 {
				t.Fatalf("BatchWriteItem() = %v, %d unprocessed", err, len(out.UnprocessedItems))
			}
			batch = nil
		}
	}
	for _, w := range []string{"a", "b", "c"} {
		if _, err := s.Heartbeat(t.Context(), pipe, w); err != nil {
			t.Fatalf("Heartbeat() = %v", err)
		}
	}
	created(t, s, Lease{Pipeline: "other", ShardID: "shardId-other"})
	c.take()

	leases, workers, err := s.List(t.Context(), pipe)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if len(leases) != n || len(workers) != 3 {
		t.Fatalf("List() = %d leases, %d workers, want %d, 3", len(leases), len(workers), n)
	}
	for i, l := range leases {
		if want := fmt.Sprintf("shardId-%04d", i); l.ShardID != want || l.Pipeline != pipe || l.Counter != 1 {
			t.Fatalf("leases[%d] = %+v, want shard %s of %s", i, l, want, pipe)
		}
	}
	if pages, min := c.take()["Query"], (n+3+39)/40; pages < min {
		t.Fatalf("List() made %d Query calls, want at least %d pages of 40", pages, min)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "me")
	if ok, err := s.Delete(t.Context(), mustGet(t, s, "shardId-1")); ok || err != nil {
		t.Fatalf("Delete() of an unfinished lease = %v, %v, want false, nil", ok, err)
	}
	stale := mustGet(t, s, "shardId-1")
	if ok, err := h.Finish(t.Context(), "7"); !ok || err != nil {
		t.Fatalf("Finish() = %v, %v", ok, err)
	}
	if ok, err := s.Delete(t.Context(), stale); ok || err != nil {
		t.Fatalf("Delete() with a stale counter = %v, %v, want false, nil", ok, err)
	}
	if ok, err := s.Delete(t.Context(), mustGet(t, s, "shardId-1")); !ok || err != nil {
		t.Fatalf("Delete() of a finished lease = %v, %v, want true, nil", ok, err)
	}
	if _, ok := get(t, s, pipe, "shardId-1"); ok {
		t.Fatalf("deleted lease still listed")
	}
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	for want := int64(1); want <= 3; want++ {
		got, err := s.Heartbeat(t.Context(), pipe, "w1")
		if got != want || err != nil {
			t.Fatalf("Heartbeat() = %d, %v, want %d, nil", got, err, want)
		}
	}
	_, workers, err := s.List(t.Context(), pipe)
	if err != nil || len(workers) != 1 || workers[0].ID != "w1" || workers[0].Counter != 3 || workers[0].Pipeline != pipe {
		t.Fatalf("List() workers = %+v, %v, want w1 at counter 3", workers, err)
	}
	stale := workers[0]
	if _, err := s.Heartbeat(t.Context(), pipe, "w1"); err != nil {
		t.Fatalf("Heartbeat() = %v", err)
	}
	if ok, err := s.DeleteWorker(t.Context(), stale); ok || err != nil {
		t.Fatalf("DeleteWorker() of a worker that heartbeated since = %v, %v, want false, nil", ok, err)
	}
	stale.Counter = 4
	if ok, err := s.DeleteWorker(t.Context(), stale); !ok || err != nil {
		t.Fatalf("DeleteWorker() = %v, %v, want true, nil", ok, err)
	}
	if _, workers, _ := s.List(t.Context(), pipe); len(workers) != 0 {
		t.Fatalf("List() workers after DeleteWorker = %+v, want none", workers)
	}
}

// TestCallsPerOperation pins the DynamoDB calls of each operation: the table's load is per shard and
// per worker, never per record.
func TestCallsPerOperation(t *testing.T) {
	c := &counting{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { c.DynamoAPI = api; return c })
	ctx := t.Context()
	var h *Held
	steps := []struct {
		name string
		do   func() error
		want map[string]int
	}{
		{"Create", func() error { _, err := s.Create(ctx, Lease{Pipeline: pipe, ShardID: "s"}); return err }, map[string]int{"PutItem": 1}},
		{"List", func() error { _, _, err := s.List(ctx, pipe); return err }, map[string]int{"Query": 1}},
		{"Take", func() error {
			var err error
			h, _, err = s.Take(ctx, Lease{Pipeline: pipe, ShardID: "s", Counter: 1}, "me")
			return err
		}, map[string]int{"UpdateItem": 1}},
		{"Renew", func() error { _, err := h.Renew(ctx); return err }, map[string]int{"UpdateItem": 1}},
		{"Checkpoint", func() error { _, err := h.Checkpoint(ctx, "1"); return err }, map[string]int{"UpdateItem": 1}},
		{"Finish", func() error { _, err := h.Finish(ctx, "2"); return err }, map[string]int{"UpdateItem": 1}},
		{"Delete", func() error { _, err := s.Delete(ctx, h.Lease()); return err }, map[string]int{"DeleteItem": 2}}, // the lease and its window item
		{"Heartbeat", func() error { _, err := s.Heartbeat(ctx, pipe, "me"); return err }, map[string]int{"UpdateItem": 1}},
		{"DeleteWorker", func() error {
			_, err := s.DeleteWorker(ctx, Worker{Pipeline: pipe, ID: "me", Counter: 1})
			return err
		}, map[string]int{"DeleteItem": 1}},
	}
	c.take()
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := c.take(); !equalCalls(got, st.want) {
			t.Fatalf("%s made calls %v, want %v", st.name, got, st.want)
		}
	}
}

func equalCalls(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
