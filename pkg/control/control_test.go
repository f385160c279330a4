package control

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
)

func TestMain(m *testing.M) { testenv.VerifyMain(m) }

var tableSeq atomic.Int64

const pipe = "congrats"

// newStore returns a store on a fresh lease table of the shared DynamoDB Local.
func newStore(t *testing.T) *checkpoint.Store {
	t.Helper()
	s := checkpoint.New(testenv.DynamoDB(testenv.DynamoDBLocal(t)), fmt.Sprintf("control-%d-%d", time.Now().UnixNano(), tableSeq.Add(1)))
	if err := s.EnsureTable(t.Context(), true); err != nil {
		t.Fatalf("EnsureTable() = %v", err)
	}
	return s
}

// lineage creates a finished parent P (checkpoint 300) with two children: A held by worker w with
// checkpoint 400, B free; and C, a child of A, waiting.
func lineage(t *testing.T, s *checkpoint.Store) {
	t.Helper()
	ctx := t.Context()
	for _, l := range []checkpoint.Lease{
		{ShardID: "P"}, {ShardID: "A", Parents: []string{"P"}}, {ShardID: "B", Parents: []string{"P"}}, {ShardID: "C", Parents: []string{"A"}},
	} {
		l.Pipeline, l.StreamARN = pipe, "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2026"
		if ok, err := s.Create(ctx, l); !ok || err != nil {
			t.Fatalf("Create(%s) = %v, %v", l.ShardID, ok, err)
		}
	}
	leases, _, err := s.List(ctx, pipe)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		switch l.ShardID {
		case "P":
			h, _, _ := s.Take(ctx, l, "w")
			if ok, err := h.Finish(ctx, "300"); !ok || err != nil {
				t.Fatalf("Finish() = %v, %v", ok, err)
			}
		case "A":
			h, _, _ := s.Take(ctx, l, "w")
			h.ReportAge(time.Now().Add(-2 * time.Second))
			if ok, err := h.Checkpoint(ctx, "400"); !ok || err != nil {
				t.Fatalf("Checkpoint() = %v, %v", ok, err)
			}
		}
	}
	if _, err := s.Heartbeat(ctx, pipe, "w"); err != nil {
		t.Fatal(err)
	}
}

// TestStatus: the document shows the pipeline's pause, its live workers with their leases, and each
// shard's state, owner, checkpoint and reported age, parents first.
func TestStatus(t *testing.T) {
	s := newStore(t)
	lineage(t, s)
	if _, err := s.SetPaused(t.Context(), pipe, true); err != nil {
		t.Fatal(err)
	}
	doc, err := Status(t.Context(), s, []Query{{Name: pipe, Enabled: true, Live: time.Minute}}, time.Now())
	if err != nil {
		t.Fatalf("Status() = %v", err)
	}
	p := doc.Pipelines[0]
	if !p.Paused || p.StreamARN != "arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/2026" {
		t.Fatalf("Status() = %+v, want paused, with the leases' stream", p)
	}
	if !slices.Equal(p.Workers, []WorkerStatus{{ID: "w", Leases: 1}}) {
		t.Fatalf("workers = %+v, want w holding 1", p.Workers)
	}
	type row struct{ id, parent, owner, checkpoint, state string }
	var got []row
	for _, sh := range p.Shards {
		got = append(got, row{sh.ShardID, sh.ParentShardID, sh.Owner, sh.Checkpoint, sh.State})
		if (sh.IteratorAgeSeconds != nil) != (sh.ShardID == "A") || sh.ShardID == "A" && *sh.IteratorAgeSeconds < 2 {
			t.Fatalf("shard %s: iterator age %v, want at least 2 s for A only", sh.ShardID, sh.IteratorAgeSeconds)
		}
	}
	want := []row{
		{"P", "", "", "300", StateFinished},
		{"A", "P", "w", "400", StateReading},
		{"B", "P", "", "", StateUnowned},
		{"C", "A", "", "", StateWaiting},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("shards = %v, want %v", got, want)
	}
	var b strings.Builder
	if err := WriteTable(&b, doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pipeline congrats: PAUSED", "w (1 leases)", "SHARD", "waiting"} {
		if !strings.Contains(b.String(), s) {
			t.Fatalf("table lacks %q:\n%s", s, b.String())
		}
	}
	// A worker whose heartbeat is old is not live.
	doc, err = Status(t.Context(), s, []Query{{Name: pipe, Live: time.Minute}}, time.Now().Add(time.Hour))
	if err != nil || len(doc.Pipelines[0].Workers) != 0 {
		t.Fatalf("Status() an hour later: workers %+v, %v; want none live", doc.Pipelines[0].Workers, err)
	}
}

// TestResetPlan: where each selected lease restarts, by position.
func TestResetPlan(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Hour)
	leases := []checkpoint.Lease{
		{ShardID: "P", Finished: true, Checkpoint: "300"},
		{ShardID: "A", Parents: []string{"P"}, Checkpoint: "400"},
		{ShardID: "B", Parents: []string{"P"}},
		{ShardID: "C", Parents: []string{"A"}},
	}
	all := map[string]bool{"P": true, "A": true, "B": true, "C": true}
	tests := []struct {
		name string
		sel  map[string]bool
		to   Position
		want map[string]start
	}{
		{"TRIM_HORIZON reads every shard again, finished ones included", all, Position{},
			map[string]start{"P": {}, "A": {}, "B": {}, "C": {}}},
		{"a time applies to every shard", all, Position{Time: at},
			map[string]start{"P": {checkpoint.StartAtTime, at}, "A": {checkpoint.StartAtTime, at}, "B": {checkpoint.StartAtTime, at}, "C": {checkpoint.StartAtTime, at}}},
		{"LATEST leaves finished shards, moves ready ones to the tip, and a waiting child skips what came before now", all, Position{Latest: true},
			map[string]start{"A": {checkpoint.StartLatest, time.Time{}}, "B": {checkpoint.StartLatest, time.Time{}}, "C": {checkpoint.StartAtTime, now}}},
		{"a selection touches nothing else", map[string]bool{"A": true, "C": true}, Position{},
			map[string]start{"A": {}, "C": {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resetPlan(leases, tc.sel, tc.to, now); !maps.Equal(got, tc.want) {
				t.Fatalf("resetPlan() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSelectShards: --shard selects the shard and every descendant; an unknown shard is refused.
func TestSelectShards(t *testing.T) {
	leases := []checkpoint.Lease{
		{ShardID: "P"}, {ShardID: "A", Parents: []string{"P"}}, {ShardID: "B", Parents: []string{"P"}}, {ShardID: "C", Parents: []string{"A"}},
	}
	got, err := selectShards(leases, "A")
	if err != nil || !maps.Equal(got, map[string]bool{"A": true, "C": true}) {
		t.Fatalf("selectShards(A) = %v, %v, want A and C", got, err)
	}
	if _, err := selectShards(leases, "X"); !errors.Is(err, ErrRefused) {
		t.Fatalf("selectShards(X) = %v, want ErrRefused", err)
	}
}

// TestReset: refused while the pipeline runs; once paused it moves every selected lease and says
// what it changed.
func TestReset(t *testing.T) {
	s := newStore(t)
	lineage(t, s)
	ctx := t.Context()
	if _, err := Reset(ctx, s, ResetRequest{Pipeline: pipe}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "pause it first") {
		t.Fatalf("Reset() on a running pipeline = %v, want ErrRefused saying to pause it first", err)
	}
	if err := SetPaused(ctx, s, pipe, true); err != nil {
		t.Fatal(err)
	}
	// Right after the pause, a reset waits for the replicas to see it: here longer than its ctx.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := Reset(short, s, ResetRequest{Pipeline: pipe, Now: time.Now(), Settle: time.Hour}); err == nil || !strings.Contains(err.Error(), "see the pause") {
		t.Fatalf("Reset() right after the pause with a short ctx = %v, want it to wait for the replicas", err)
	}
	if l, _, _ := s.List(ctx, pipe); !slices.ContainsFunc(l, func(l checkpoint.Lease) bool { return l.Checkpoint == "400" }) {
		t.Fatalf("the reset that waited changed leases: %+v", l)
	}
	changes, err := Reset(ctx, s, ResetRequest{Pipeline: pipe, Shard: "A", To: Position{}, Now: time.Now()})
	if err != nil {
		t.Fatalf("Reset() = %v", err)
	}
	slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(a.ShardID, b.ShardID) })
	want := []Change{{ShardID: "A", From: "400", To: "TRIM_HORIZON"}, {ShardID: "C", To: "TRIM_HORIZON"}}
	if !slices.Equal(changes, want) {
		t.Fatalf("Reset() changed %+v, want %+v", changes, want)
	}
	leases, _, _ := s.List(ctx, pipe)
	for _, l := range leases {
		if l.ShardID == "A" && (l.Owner != "" || l.Checkpoint != "") || l.ShardID == "P" && !l.Finished {
			t.Fatalf("lease %+v after a reset of A", l)
		}
	}
}
