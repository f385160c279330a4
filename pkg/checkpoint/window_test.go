package checkpoint

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// A shard's tumbling window is stored beside its lease, out of List's way, and goes with the lease.
func TestWindowIsStoredAndDeletedWithItsLease(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	if w, err := s.LoadWindow(ctx, "p", "s1"); err != nil || !reflect.DeepEqual(w, Window{}) {
		t.Fatalf("LoadWindow() before any save = %+v, %v, want the zero Window", w, err)
	}
	want := Window{Start: time.UnixMilli(1_700_000_005_000).UTC(), State: map[string]string{"sum": "31"}, Through: "12345678901234567890123"}
	if err := s.SaveWindow(ctx, "p", "s1", want); err != nil {
		t.Fatalf("SaveWindow() = %v", err)
	}
	if got, err := s.LoadWindow(ctx, "p", "s1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadWindow() = %+v, %v, want %+v", got, err, want)
	}
	want.Closed, want.State = true, nil
	if err := s.SaveWindow(ctx, "p", "s1", want); err != nil {
		t.Fatalf("SaveWindow() = %v", err)
	}
	if got, err := s.LoadWindow(ctx, "p", "s1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadWindow() after closing = %+v, %v, want %+v", got, err, want)
	}

	l := created(t, s, Lease{Pipeline: "p", ShardID: "s1"})
	if leases, _, err := s.List(ctx, "p"); err != nil || len(leases) != 1 {
		t.Fatalf("List() = %v, %v, want the one lease (the window item is not a lease)", leases, err)
	}
	h := took(t, s, l, "me")
	if _, err := h.Finish(ctx, "1"); err != nil {
		t.Fatalf("Finish() = %v", err)
	}
	if ok, err := s.Delete(ctx, h.Lease()); !ok || err != nil {
		t.Fatalf("Delete() = %v, %v", ok, err)
	}
	if w, err := s.LoadWindow(ctx, "p", "s1"); err != nil || !reflect.DeepEqual(w, Window{}) {
		t.Errorf("LoadWindow() after the lease was deleted = %+v, %v, want none", w, err)
	}
}

// A reset starts the shard's reading over, and its windows with it.
func TestResetDeletesTheWindow(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	l := created(t, s, Lease{Pipeline: "p", ShardID: "s1"})
	if err := s.SaveWindow(ctx, "p", "s1", Window{Start: time.UnixMilli(5000).UTC(), State: map[string]string{}, Through: "9"}); err != nil {
		t.Fatalf("SaveWindow() = %v", err)
	}
	if _, ok, err := s.Reset(ctx, l, "", time.Time{}); !ok || err != nil {
		t.Fatalf("Reset() = %v, %v", ok, err)
	}
	if w, err := s.LoadWindow(ctx, "p", "s1"); err != nil || !reflect.DeepEqual(w, Window{}) {
		t.Errorf("LoadWindow() after a reset = %+v, %v, want none", w, err)
	}
}
