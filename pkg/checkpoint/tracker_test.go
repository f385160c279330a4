package checkpoint

import (
	"slices"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	const d = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lease := func(id, owner string, counter int64) Lease { return Lease{ShardID: id, Owner: owner, Counter: counter} }
	worker := func(id string, counter int64) Worker { return Worker{ID: id, Counter: counter} }
	type obs struct {
		after   time.Duration // since t0, on the observer's clock
		leases  []Lease
		workers []Worker
	}
	tests := []struct {
		name               string
		observations       []obs // the view of the last one is checked
		wantExpired        []string
		wantLive, wantDead []string
		wantStranded       []string
	}{
		{
			name:         "a lease first seen is not expired, however old it looks",
			observations: []obs{{after: 0, leases: []Lease{lease("s1", "a", 7)}}},
		},
		{
			name: "a lease whose counter stood still for lease_duration is expired",
			observations: []obs{
				{after: 0, leases: []Lease{lease("s1", "a", 7)}},
				{after: d, leases: []Lease{lease("s1", "a", 7)}},
			},
			wantExpired: []string{"s1"},
		},
		{
			name: "a lease still for just under lease_duration is not expired",
			observations: []obs{
				{after: 0, leases: []Lease{lease("s1", "a", 7)}},
				{after: d - time.Millisecond, leases: []Lease{lease("s1", "a", 7)}},
			},
		},
		{
			name: "a renewal restarts the wait",
			observations: []obs{
				{after: 0, leases: []Lease{lease("s1", "a", 7)}},
				{after: 8 * time.Second, leases: []Lease{lease("s1", "a", 8)}},
				{after: 16 * time.Second, leases: []Lease{lease("s1", "a", 8)}},
			},
		},
		{
			name: "after a renewal the lease expires lease_duration after the counter moved",
			observations: []obs{
				{after: 0, leases: []Lease{lease("s1", "a", 7)}},
				{after: 8 * time.Second, leases: []Lease{lease("s1", "a", 8)}},
				{after: 18 * time.Second, leases: []Lease{lease("s1", "a", 8)}},
			},
			wantExpired: []string{"s1"},
		},
		{
			name: "free and finished leases are never expired; a free one left for lease_duration is stranded",
			observations: []obs{
				{after: 0, leases: []Lease{lease("free", "", 3), {ShardID: "done", Counter: 9, Finished: true}}},
				{after: time.Hour, leases: []Lease{lease("free", "", 3), {ShardID: "done", Counter: 9, Finished: true}}},
			},
			wantStranded: []string{"free"},
		},
		{
			name: "a free lease first seen, or released since, is not stranded",
			observations: []obs{
				{after: 0, leases: []Lease{lease("released", "a", 3)}},
				{after: d, leases: []Lease{lease("released", "", 4), lease("new", "", 1)}},
			},
		},
		{
			name: "a lease that vanished and came back starts afresh",
			observations: []obs{
				{after: 0, leases: []Lease{lease("s1", "a", 2)}},
				{after: 5 * time.Second},
				{after: 12 * time.Second, leases: []Lease{lease("s1", "a", 2)}},
			},
		},
		{
			name: "the wall clock written in the table plays no part",
			observations: []obs{
				{after: 0, leases: []Lease{{ShardID: "s1", Owner: "a", Counter: 4, UpdatedAt: t0.Add(-48 * time.Hour)}}},
				{after: time.Second, leases: []Lease{{ShardID: "s1", Owner: "a", Counter: 4, UpdatedAt: t0.Add(-48 * time.Hour)}}},
			},
		},
		{
			name: "workers whose heartbeat moves are live, others dead after lease_duration",
			observations: []obs{
				{after: 0, workers: []Worker{worker("w1", 1), worker("w2", 1), worker("w3", 5)}},
				{after: 6 * time.Second, workers: []Worker{worker("w1", 2), worker("w2", 1), worker("w3", 5)}},
				{after: 10 * time.Second, workers: []Worker{worker("w1", 3), worker("w2", 1), worker("w3", 5), worker("w4", 1)}},
			},
			wantLive: []string{"w1", "w4"},
			wantDead: []string{"w2", "w3"},
		},
		{
			name: "a clock that seems to go back expires nothing",
			observations: []obs{
				{after: 20 * time.Second, leases: []Lease{lease("s1", "a", 7)}},
				{after: 0, leases: []Lease{lease("s1", "a", 7)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(d)
			var v View
			for _, o := range tt.observations {
				v = tr.Observe(t0.Add(o.after), o.leases, o.workers)
			}
			var expired, live, dead, stranded []string
			for _, l := range v.Expired {
				expired = append(expired, l.ShardID)
			}
			for _, l := range v.Stranded {
				stranded = append(stranded, l.ShardID)
			}
			for _, w := range v.Live {
				live = append(live, w.ID)
			}
			for _, w := range v.Dead {
				dead = append(dead, w.ID)
			}
			if !slices.Equal(expired, tt.wantExpired) || !slices.Equal(live, tt.wantLive) || !slices.Equal(dead, tt.wantDead) ||
				!slices.Equal(stranded, tt.wantStranded) || len(tr.stranded) != len(tt.wantStranded) {
				t.Fatalf("Observe() = expired %v, live %v, dead %v, stranded %v; want %v, %v, %v, %v",
					expired, live, dead, stranded, tt.wantExpired, tt.wantLive, tt.wantDead, tt.wantStranded)
			}
		})
	}
}

func TestTrackerNextExpiry(t *testing.T) {
	const d = 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type obs struct {
		after  time.Duration // since t0
		leases []Lease
	}
	owned := func(id, owner string, counter int64) Lease { return Lease{ShardID: id, Owner: owner, Counter: counter} }
	tests := []struct {
		name         string
		observations []obs
		want         time.Duration // since t0; ignored with none
		none         bool
	}{
		{
			name: "the first lease to expire is the one whose counter stood still longest",
			observations: []obs{
				{0, []Lease{owned("s1", "a", 1), owned("s2", "b", 1)}},
				{time.Second, []Lease{owned("s1", "a", 2), owned("s2", "b", 1)}},
			},
			want: d,
		},
		{
			name: "a renewal pushes the expiry back",
			observations: []obs{
				{0, []Lease{owned("s1", "a", 1)}},
				{time.Second, []Lease{owned("s1", "a", 2)}},
			},
			want: time.Second + d,
		},
		{
			name: "expired, free and finished leases do not count, so the loop never spins on them",
			observations: []obs{
				{0, []Lease{owned("s1", "a", 1), owned("free", "", 1), {ShardID: "done", Counter: 1, Finished: true}}},
				{d + time.Second, []Lease{owned("s1", "a", 1), owned("free", "", 1), {ShardID: "done", Counter: 1, Finished: true}}},
			},
			none: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(d)
			for _, o := range tt.observations {
				tr.Observe(t0.Add(o.after), o.leases, nil)
			}
			got := tr.NextExpiry()
			if tt.none != got.IsZero() || (!tt.none && !got.Equal(t0.Add(tt.want))) {
				t.Fatalf("NextExpiry() = %v, want t0 + %v (none: %v)", got, tt.want, tt.none)
			}
		})
	}
}
