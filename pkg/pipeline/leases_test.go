package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
)

func TestDeletable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-finishedRetention - time.Minute)
	tests := []struct {
		name   string
		leases []checkpoint.Lease
		listed []string
		want   []string
	}{
		{
			name: "a finished parent gone from the stream, past retention, with running children, is deleted",
			leases: []checkpoint.Lease{
				{ShardID: "p", Finished: true, UpdatedAt: old},
				{ShardID: "c1", Parents: []string{"p"}, Owner: "w"},
				{ShardID: "c2", Parents: []string{"p"}, Checkpoint: "5"},
			},
			listed: []string{"c1", "c2"},
			want:   []string{"p"},
		},
		{
			name: "a finished parent whose child has not started is kept",
			leases: []checkpoint.Lease{
				{ShardID: "p", Finished: true, UpdatedAt: old},
				{ShardID: "c1", Parents: []string{"p"}, Owner: "w"},
				{ShardID: "c2", Parents: []string{"p"}},
			},
			listed: []string{"c1", "c2"},
		},
		{
			name:   "a finished shard the stream still lists is kept, or it would get a new lease and be read again",
			leases: []checkpoint.Lease{{ShardID: "p", Finished: true, UpdatedAt: old}},
			listed: []string{"p"},
		},
		{
			name:   "a finished shard within the stream's retention is kept",
			leases: []checkpoint.Lease{{ShardID: "p", Finished: true, UpdatedAt: now.Add(-23 * time.Hour)}},
		},
		{
			name:   "an unfinished lease is never deleted",
			leases: []checkpoint.Lease{{ShardID: "p", UpdatedAt: old}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listed := map[string]bool{}
			for _, id := range tt.listed {
				listed[id] = true
			}
			got := []string{}
			for _, l := range deletable(tt.leases, listed, now, finishedRetention) {
				got = append(got, l.ShardID)
			}
			if slices.Sort(got); !slices.Equal(got, append([]string{}, tt.want...)) {
				t.Errorf("deletable() = %v, want %v", got, tt.want)
			}
		})
	}
}
