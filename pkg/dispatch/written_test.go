package dispatch

import (
	"fmt"
	"testing"
)

func TestWrittenCountsEachLanesBatchesBeyondTheCheckpointWritten(t *testing.T) {
	type batch struct {
		lane int
		last int64
	}
	tests := []struct {
		name  string
		sent  []batch
		sets  []ckSet
		wrote []string
		want  []int // batches per lane 0, 1
	}{
		{name: "nothing written: every batch counts",
			sent: []batch{{0, 9}, {0, 19}, {1, 14}}, sets: []ckSet{{"9", 10}},
			want: []int{2, 1}},
		{name: "a write passes the batches whose last record is below its end",
			sent: []batch{{0, 9}, {0, 19}, {1, 14}}, sets: []ckSet{{"9", 10}, {"19", 20}}, wrote: []string{"9"},
			want: []int{1, 1}},
		{name: "a coalesced write passes what every checkpoint set before it passes",
			sent: []batch{{0, 9}, {0, 19}, {1, 14}}, sets: []ckSet{{"9", 10}, {"19", 20}}, wrote: []string{"19"},
			want: []int{0, 0}},
		{name: "a batch the checkpoint passed in part still counts",
			sent: []batch{{0, 9}, {1, 14}}, sets: []ckSet{{"12", 13}}, wrote: []string{"12"},
			want: []int{0, 1}},
		{name: "a checkpoint never set moves nothing",
			sent: []batch{{0, 9}}, sets: []ckSet{{"9", 10}}, wrote: []string{"42"},
			want: []int{1, 0}},
		{name: "an older notice after a newer one moves nothing back",
			sent: []batch{{0, 9}, {0, 19}}, sets: []ckSet{{"9", 10}, {"19", 20}}, wrote: []string{"19", "9"},
			want: []int{0, 0}},
		{name: "past maxSets a newer checkpoint takes the place of the newest one recorded",
			sent: []batch{{0, 9}, {0, 99}}, sets: manySets(maxSets + 1), wrote: []string{fmt.Sprint(maxSets)},
			want: []int{2, 0}},
		{name: "past maxSets the newest checkpoint is still known when written",
			sent: []batch{{0, 9}, {0, 99}}, sets: manySets(maxSets + 1), wrote: []string{fmt.Sprint(maxSets + 1)},
			want: []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w written
			for _, b := range tt.sent {
				w.sent(b.lane, b.last)
			}
			for _, s := range tt.sets {
				w.set(s.seq, s.end)
			}
			for _, seq := range tt.wrote {
				w.wrote(seq)
			}
			for lane, want := range tt.want {
				if got := w.batches(lane); got != want {
					t.Errorf("batches(%d) = %d, want %d", lane, got, want)
				}
			}
		})
	}
}

// manySets is n checkpoints, the i-th (from 1) passing the ids below 10*i, its seq i.
func manySets(n int) []ckSet {
	var s []ckSet
	for i := 1; i <= n; i++ {
		s = append(s, ckSet{seq: fmt.Sprint(i), end: int64(10 * i)})
	}
	return s
}
