package shards_test

import (
	"slices"
	"testing"

	"github.com/poller-dev/poller/pkg/shards"
)

func TestLineageReady(t *testing.T) {
	root := func(id string) shards.Shard { return shards.Shard{ID: id} }
	child := func(id, parent string) shards.Shard { return shards.Shard{ID: id, ParentID: parent} }
	tests := []struct {
		name     string
		all      []shards.Shard
		finished []string
		tracked  []string // finished shards count as tracked too
		want     []string
	}{
		{
			name: "a root shard is ready",
			all:  []shards.Shard{root("a")},
			want: []string{"a"},
		},
		{
			name: "a child waits for its listed parent while the parent is unfinished",
			all:  []shards.Shard{root("p"), child("c", "p")},
			want: []string{"p"},
		},
		{
			name:    "a child waits for its listed, tracked, unfinished parent",
			all:     []shards.Shard{root("p"), child("c", "p")},
			tracked: []string{"p", "c"},
			want:    []string{"p"},
		},
		{
			name: "a child of a parent that is neither listed nor tracked is ready: the parent was trimmed away",
			all:  []shards.Shard{child("c", "gone")},
			want: []string{"c"},
		},
		{
			name:    "a child of a tracked but unlisted parent waits while the parent is unfinished",
			all:     []shards.Shard{child("c", "p")},
			tracked: []string{"p"},
			want:    nil,
		},
		{
			name:     "a child of a tracked, unlisted, finished parent is ready",
			all:      []shards.Shard{child("c", "p")},
			finished: []string{"p"},
			want:     []string{"c"},
		},
		{
			name:     "finished shards are never ready, roots or children",
			all:      []shards.Shard{root("a"), child("b", "a"), child("c", "gone")},
			finished: []string{"a", "b", "c"},
			want:     nil,
		},
		{
			name:     "both children of a split are ready once their parent is finished",
			all:      []shards.Shard{root("p"), child("l", "p"), child("r", "p")},
			finished: []string{"p"},
			want:     []string{"l", "r"},
		},
		{
			name:     "a grandchild waits while its parent waits for nothing but its own reading",
			all:      []shards.Shard{root("g"), child("p", "g"), child("c", "p")},
			finished: []string{"g"},
			want:     []string{"p"},
		},
		{
			name:     "ready shards come in the order given",
			all:      []shards.Shard{root("z"), child("y", "x"), root("a"), child("m", "done")},
			finished: []string{"done"},
			want:     []string{"z", "y", "a", "m"},
		},
		{
			name: "nothing listed, nothing ready",
			all:  nil,
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := shards.Lineage{
				Finished: func(id string) bool { return slices.Contains(tc.finished, id) },
				Tracked:  func(id string) bool { return slices.Contains(tc.tracked, id) || slices.Contains(tc.finished, id) },
			}
			var got []string
			for _, s := range l.Ready(tc.all) {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Ready() = %v, want %v", got, tc.want)
			}
		})
	}
}
