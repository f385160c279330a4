package progress

import (
	"fmt"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	tests := []struct {
		name    string
		seqs    []string
		done    []int // indexes into seqs, in completion order
		want    string
		moved   bool
		pending int
	}{
		{name: "nothing done leaves no checkpoint", seqs: []string{"1", "2"}, want: "", moved: false, pending: 2},
		{name: "all done in order moves to the last", seqs: []string{"1", "2", "3"}, done: []int{0, 1, 2}, want: "3", moved: true},
		{name: "a later record done first does not move the checkpoint past an earlier one", seqs: []string{"1", "2", "3"}, done: []int{2, 1}, want: "", moved: false, pending: 3},
		{name: "a gap stops the checkpoint before it", seqs: []string{"10", "200", "3000", "40000"}, done: []int{0, 1, 3}, want: "200", moved: true, pending: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Tracker
			ids := make([]int64, len(tt.seqs))
			for i, s := range tt.seqs {
				ids[i] = p.Add(s, time.Time{})
			}
			for _, i := range tt.done {
				p.Done(ids[i])
			}
			got, moved := p.Advance()
			if got != tt.want || moved != tt.moved || p.Pending() != tt.pending {
				t.Errorf("Advance() = %q, %v (pending %d), want %q, %v (pending %d)", got, moved, p.Pending(), tt.want, tt.moved, tt.pending)
			}
		})
	}
}

func TestTrackerKeepsIDsAcrossCompaction(t *testing.T) {
	var p Tracker
	var ids []int64
	for i := range 1000 {
		ids = append(ids, p.Add(string(rune('a'+i%26)), time.Time{}))
	}
	// Complete in order, advancing often, so compaction happens many times while ids stay valid.
	for i, id := range ids {
		p.Done(id)
		if i%7 == 0 {
			p.Advance()
		}
		if i == 499 {
			next := p.Add("x", time.Time{})
			ids = append(ids, next)
		}
	}
	p.Advance()
	if p.Pending() != 1 {
		t.Fatalf("Pending() = %d, want 1 (the record added midway, never done)", p.Pending())
	}
	p.Done(ids[len(ids)-1])
	if got, moved := p.Advance(); got != "x" || !moved {
		t.Errorf("Advance() = %q, %v, want \"x\", true", got, moved)
	}
}

func TestTrackerOldest(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var p Tracker
	if _, ok := p.Oldest(); ok {
		t.Fatalf("Oldest() of an empty Progress reports a record")
	}
	a, b, c := p.Add("1", t0), p.Add("2", t0.Add(time.Second)), p.Add("3", t0.Add(2*time.Second))
	p.Done(a)
	p.Done(c) // done out of order: b is still the oldest not done
	p.Advance()
	if got, ok := p.Oldest(); !ok || !got.Equal(t0.Add(time.Second)) {
		t.Errorf("Oldest() = %v, %v, want %v, true (the first record not done)", got, ok, t0.Add(time.Second))
	}
	p.Done(b)
	p.Advance()
	if got, ok := p.Oldest(); ok {
		t.Errorf("Oldest() with every record done = %v, true, want false", got)
	}
}

func TestTrackerCountsSentRecordsPerLaneUntilPassed(t *testing.T) {
	var p Tracker
	a, b, c := p.Add("1", time.Time{}), p.Add("2", time.Time{}), p.Add("3", time.Time{})
	p.Sent(a, 0)
	p.Sent(b, 1)
	p.Sent(c, 1)
	p.Sent(c, 1) // a record is sent once; a second call changes nothing
	p.Done(b)
	p.Done(c)
	p.Advance() // "1" is not done: nothing passes
	if got := []int{p.SentBy(0), p.SentBy(1), p.SentBy(5)}; fmt.Sprint(got) != "[1 2 0]" {
		t.Fatalf("SentBy(0, 1, 5) = %v, want [1 2 0] before the checkpoint moves", got)
	}
	p.Done(a)
	p.Advance()
	if got := []int{p.SentBy(0), p.SentBy(1)}; fmt.Sprint(got) != "[0 0]" {
		t.Errorf("SentBy(0, 1) = %v, want [0 0] once the checkpoint passed every record", got)
	}
}
