package checkpoint

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"testing"
)

// leasesOf returns n leases shard-00..: owners[i] owns the i-th (missing or "": free).
func leasesOf(n int, owners ...string) []Lease {
	out := make([]Lease, n)
	for i := range out {
		out[i] = Lease{ShardID: fmt.Sprintf("shard-%02d", i), Counter: 1}
		if i < len(owners) {
			out[i].Owner = owners[i]
		}
	}
	return out
}

// owned returns k copies of w, for leasesOf.
func owned(w string, k int) []string { return slices.Repeat([]string{w}, k) }

func allReady(leases []Lease) map[string]bool {
	m := map[string]bool{}
	for _, l := range leases {
		m[l.ShardID] = true
	}
	return m
}

func runningOf(leases []Lease, me string) map[string]bool {
	m := map[string]bool{}
	for _, l := range leases {
		if l.Owner == me {
			m[l.ShardID] = true
		}
	}
	return m
}

func ids(leases []Lease) []string {
	out := []string{}
	for _, l := range leases {
		out = append(out, l.ShardID)
	}
	sort.Strings(out)
	return out
}

func TestPlan(t *testing.T) {
	type want struct {
		workers, target int
		resume          []string
		takeUpTo        int
		takeFrom        int // how many candidates Take lists
		wantFrom        string
		wants           int
		steal           []string
		handoff         []handoff
		adopt           []string
	}
	tests := []struct {
		name string
		in   func() planInput
		want want
	}{
		{
			name: "a lone worker takes every free lease",
			in: func() planInput {
				ls := leasesOf(32)
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a"}}
			},
			want: want{workers: 1, target: 32, takeUpTo: 32, takeFrom: 32},
		},
		{
			name: "three workers starting on 32 free leases each take at most ceil(32/3) = 11",
			in: func() planInput {
				ls := leasesOf(32)
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}}
			},
			want: want{workers: 3, target: 11, takeUpTo: 11, takeFrom: 32},
		},
		{
			name: "a worker at its fair share takes nothing, even with free leases left",
			in: func() planInput {
				ls := leasesOf(32, append(owned("a", 11), owned("b", 11)...)...)
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, Running: runningOf(ls, "a")}
			},
			want: want{workers: 3, target: 11},
		},
		{
			name: "a newcomer asks the most loaded worker for two leases when nothing is free",
			in: func() planInput {
				ls := leasesOf(32, append(owned("a", 20), owned("b", 12)...)...)
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2}
			},
			want: want{workers: 3, target: 11, takeUpTo: 11, wantFrom: "a", wants: 2},
		},
		{
			name: "a worker one lease below the most loaded does not ask: 11, 11, 10 is balanced",
			in: func() planInput {
				ls := leasesOf(32, append(append(owned("a", 11), owned("b", 11)...), owned("c", 10)...)...)
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, Running: runningOf(ls, "c"), MaxWants: 2}
			},
			want: want{workers: 3, target: 11, takeUpTo: 1},
		},
		{
			name: "ten leases over four workers move from 3, 3, 3, 1 to 3, 3, 2, 2",
			in: func() planInput {
				ls := leasesOf(10, append(append(append(owned("a", 3), owned("b", 3)...), owned("c", 3)...), "d")...)
				return planInput{Me: "d", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c", "d"}, Running: runningOf(ls, "d"), MaxWants: 2}
			},
			want: want{workers: 4, target: 3, takeUpTo: 2, wantFrom: "a", wants: 1},
		},
		{
			name: "requests already made count for the requester, so they are not made again",
			in: func() planInput {
				ls := leasesOf(32, append(owned("a", 21), owned("b", 11)...)...)
				for i := range 10 {
					ls[i].WantedBy = "c"
				}
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2}
			},
			want: want{workers: 3, target: 11, takeUpTo: 1},
		},
		{
			name: "a request by a worker that is not live does not count, and its lease may be asked for again",
			in: func() planInput {
				ls := leasesOf(32, owned("a", 32)...)
				for i := range 32 {
					ls[i].WantedBy = "gone"
				}
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "c"}, MaxWants: 2}
			},
			want: want{workers: 2, target: 16, takeUpTo: 16, wantFrom: "a", wants: 2},
		},
		{
			name: "expired leases are taken first, and their owner no longer counts as a worker",
			in: func() planInput {
				ls := leasesOf(32, append(append(owned("a", 11), owned("b", 11)...), owned("dead", 10)...)...)
				expired := map[string]bool{}
				for _, l := range ls[22:] {
					expired[l.ShardID] = true
				}
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Expired: expired,
					Live: []string{"a", "b", "dead"}, Running: runningOf(ls, "a"), MaxWants: 2}
			},
			want: want{workers: 2, target: 16, takeUpTo: 5, takeFrom: 10},
		},
		{
			name: "an owner hands a running lease over to the live worker that asked",
			in: func() planInput {
				ls := leasesOf(4, owned("a", 4)...)
				ls[1].WantedBy = "b"
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b"}, Running: runningOf(ls, "a")}
			},
			want: want{workers: 2, target: 2, handoff: []handoff{{ShardID: "shard-01", To: "b"}}},
		},
		{
			name: "an owner ignores a request from a worker that is not live",
			in: func() planInput {
				ls := leasesOf(4, owned("a", 4)...)
				ls[1].WantedBy = "gone"
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a"}, Running: runningOf(ls, "a")}
			},
			want: want{workers: 1, target: 4},
		},
		{
			name: "a lease handed over to this worker is resumed, whatever the fair share",
			in: func() planInput {
				ls := leasesOf(4, "a", "a", "b", "b")
				return planInput{Me: "b", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b"}, Running: map[string]bool{"shard-02": true}}
			},
			want: want{workers: 2, target: 2, resume: []string{"shard-03"}},
		},
		{
			name: "a lease asked for over lease_duration ago and still run by its owner is stolen",
			in: func() planInput {
				ls := leasesOf(4, owned("a", 4)...)
				ls[0].WantedBy, ls[1].WantedBy = "b", "b"
				return planInput{Me: "b", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b"},
					Overdue: map[string]bool{"shard-00": true}}
			},
			want: want{workers: 2, target: 2, steal: []string{"shard-00"}},
		},
		{
			name: "children waiting for their parent and finished leases are neither counted nor taken",
			in: func() planInput {
				ls := leasesOf(6, "a", "a")
				ls[2].Finished, ls[3].Finished = true, true
				ready := allReady(ls)
				delete(ready, "shard-04")
				delete(ready, "shard-05")
				return planInput{Me: "b", Leases: ls, Ready: ready, Live: []string{"a", "b"}, MaxWants: 2}
			},
			want: want{workers: 2, target: 1, takeUpTo: 1, wantFrom: "a", wants: 1},
		},
		{
			name: "six one-shard pipelines: a worker holding two elsewhere leaves a free lease to the others",
			in: func() planInput {
				ls := leasesOf(1)
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2,
					Elsewhere: share{Active: 5, Load: map[string]int{"a": 2, "b": 2}}}
			},
			want: want{workers: 3, target: 2},
		},
		{
			name: "six one-shard pipelines: a worker holding one elsewhere takes a free lease",
			in: func() planInput {
				ls := leasesOf(1)
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2,
					Elsewhere: share{Active: 5, Load: map[string]int{"a": 2, "b": 2, "c": 1}}}
			},
			want: want{workers: 3, target: 2, takeUpTo: 1, takeFrom: 1},
		},
		{
			name: "six one-shard pipelines at 4/2/0: the idle worker asks the owner of this one, counted over all of them",
			in: func() planInput {
				ls := leasesOf(1, "b")
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2,
					Elsewhere: share{Active: 5, Load: map[string]int{"a": 4, "b": 1}}}
			},
			want: want{workers: 3, target: 2, takeUpTo: 2, wantFrom: "b", wants: 1},
		},
		{
			name: "at 2/2/1 over all pipelines nobody asks",
			in: func() planInput {
				ls := leasesOf(2, "a", "b")
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b", "c"}, MaxWants: 2,
					Elsewhere: share{Active: 3, Load: map[string]int{"a": 1, "b": 1, "c": 1}}}
			},
			want: want{workers: 3, target: 2, takeUpTo: 1},
		},
		{
			name: "until every pipeline of the process planned once, a worker takes but does not ask",
			in: func() planInput {
				ls := leasesOf(4, owned("a", 4)...)
				return planInput{Me: "c", Leases: ls, Ready: allReady(ls), Live: []string{"a", "c"}, MaxWants: 2, Partial: true}
			},
			want: want{workers: 2, target: 2, takeUpTo: 2},
		},
		{
			name: "workers live in other pipelines count, and the owners of expired leases there do not",
			in: func() planInput {
				ls := leasesOf(6)
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a"}, MaxWants: 2,
					Elsewhere: share{Active: 0, Live: []string{"b", "c", "dead"}, Gone: []string{"dead"}}}
			},
			want: want{workers: 3, target: 2, takeUpTo: 2, takeFrom: 6},
		},
		{
			name: "a stranded free lease is taken whatever the fair share",
			in: func() planInput {
				ls := leasesOf(3, "a", "a")
				return planInput{Me: "a", Leases: ls, Ready: allReady(ls), Live: []string{"a", "b"}, Running: runningOf(ls, "a"),
					Stranded: map[string]bool{"shard-02": true}, MaxWants: 2}
			},
			want: want{workers: 2, target: 2, adopt: []string{"shard-02"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(tt.in())
			wantFrom := ""
			for _, l := range got.Want {
				if wantFrom != "" && l.Owner != wantFrom {
					t.Errorf("Plan().Want asks %s and %s, want one worker asked", wantFrom, l.Owner)
				}
				wantFrom = l.Owner
			}
			steal := ids(got.Steal)
			resume := ids(got.Resume)
			if got.Workers != tt.want.workers || got.Target != tt.want.target || got.TakeUpTo != tt.want.takeUpTo ||
				len(got.Take) != tt.want.takeFrom || wantFrom != tt.want.wantFrom || len(got.Want) != tt.want.wants ||
				!slices.Equal(steal, append([]string{}, tt.want.steal...)) || !slices.Equal(resume, append([]string{}, tt.want.resume...)) ||
				!slices.Equal(got.Handoff, tt.want.handoff) || !slices.Equal(ids(got.Adopt), append([]string{}, tt.want.adopt...)) {
				t.Errorf("Plan() = workers %d target %d, resume %v, take %d of %d, want %d from %q, steal %v, handoff %v;\n"+
					"want workers %d target %d, resume %v, take %d of %d, want %d from %q, steal %v, handoff %v",
					got.Workers, got.Target, resume, got.TakeUpTo, len(got.Take), len(got.Want), wantFrom, steal, got.Handoff,
					tt.want.workers, tt.want.target, tt.want.resume, tt.want.takeUpTo, tt.want.takeFrom, tt.want.wants, tt.want.wantFrom, tt.want.steal, tt.want.handoff)
			}
		})
	}
}

// TestPlanConverges: fleets that grow and shrink reach loads within one of each other in a few
// rounds, and then no lease changes hands.
func TestPlanConverges(t *testing.T) {
	workers := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("w%d", i))
		}
		return out
	}
	tests := []struct {
		name      string
		shards    int
		before    int // workers holding the leases evenly at the start (0: all free)
		after     int // workers from then on; the ones removed released their leases
		maxRounds int
		seeds     uint64 // 0: 10
	}{
		{name: "three workers share 32 free leases", shards: 32, after: 3, maxRounds: 3},
		{name: "one worker with 32 leases is joined by two", shards: 32, before: 1, after: 3, maxRounds: 10},
		{name: "one worker with 32 leases is joined by three", shards: 32, before: 1, after: 4, maxRounds: 10},
		{name: "four workers drop to two", shards: 32, before: 4, after: 2, maxRounds: 3},
		{name: "two workers grow to seven on ten leases", shards: 10, before: 2, after: 7, maxRounds: 10},
		{name: "two hundred leases move from one worker to ten", shards: 200, before: 1, after: 10, maxRounds: 20},
		// Two a round would take a newcomer 75 rounds to its share of 150 here.
		{name: "six hundred leases move from one worker to four", shards: 600, before: 1, after: 4, maxRounds: 30, seeds: 3},
		{name: "six hundred leases held by two of four", shards: 600, before: 2, after: 4, maxRounds: 30, seeds: 3},
	}
	for _, tt := range tests {
		for seed := range cmp.Or(tt.seeds, 10) {
			f := newFleet(leasesOf(tt.shards), workers(tt.after), seed)
			if tt.before > 0 {
				for i := range f.leases {
					f.leases[i].Owner = fmt.Sprintf("w%d", i%tt.before)
				}
			}
			for i := range f.leases {
				if f.leases[i].Owner != "" && !slices.Contains(f.workers, f.leases[i].Owner) {
					f.leases[i].Owner = "" // released on a clean stop
				}
			}
			rounds := 0
			for f.round(t) > 0 {
				rounds++
				if rounds > tt.maxRounds {
					t.Fatalf("%s (seed %d): still moving after %d rounds, loads %v", tt.name, seed, rounds, f.loads())
				}
			}
			for range 10 {
				if moves := f.round(t); moves != 0 {
					t.Fatalf("%s (seed %d): %d leases moved or were asked for after the fleet had settled", tt.name, seed, moves)
				}
			}
			lo, hi := tt.shards/tt.after, (tt.shards+tt.after-1)/tt.after
			for w, n := range f.loads() {
				if n < lo || n > hi {
					t.Errorf("%s (seed %d): %s holds %d leases, want %d..%d (loads %v)", tt.name, seed, w, n, lo, hi, f.loads())
				}
			}
		}
	}
}

func TestSuccessor(t *testing.T) {
	live := map[string]bool{"me": true, "b": true}
	for _, tc := range []struct{ name, requester, want string }{
		{"a live requester gets the lease", "b", "b"},
		{"a requester gone (dead or stopped) gets nothing: the lease is released", "c", ""},
		{"no requester: released", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := successor(tc.requester, live); got != tc.want {
				t.Errorf("successor(%q) = %q, want %q", tc.requester, got, tc.want)
			}
		})
	}
}
