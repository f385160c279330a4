package dispatch

import (
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
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
			var p Progress
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

func TestProgressKeepsIDsAcrossCompaction(t *testing.T) {
	var p Progress
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

func TestProgressOldest(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var p Progress
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
