package checkpoint

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// fleet simulates workers that all plan from the same snapshot of the lease table each round and
// then write at once, in random order, with the table's conditions: a take needs the counter it saw,
// a request needs the owner and request it saw, and a handoff lands at the end of the round (the
// owner drains first). Each worker is a process with one Fleet, running one coordinator per pipeline
// (runs; by default every pipeline of the leases), whose plans run one after the other in a random
// order. A lease whose owner is not a worker is expired (a killed worker, lease_duration later); a
// free lease that stood still for two rounds is stranded.
type fleet struct {
	leases  []Lease
	workers []string
	runs    map[string][]string
	views   map[string]*Fleet
	still   map[string]int // rounds each lease's counter stood still while free
	rng     *rand.Rand
}

func newFleet(leases []Lease, workers []string, seed uint64) *fleet {
	f := &fleet{leases: leases, workers: workers, runs: map[string][]string{}, views: map[string]*Fleet{},
		still: map[string]int{}, rng: rand.New(rand.NewPCG(seed, 1))}
	var all []string
	for _, l := range leases {
		if !slices.Contains(all, l.Pipeline) {
			all = append(all, l.Pipeline)
		}
	}
	for _, w := range workers {
		f.runs[w] = all
	}
	return f
}

// view is worker w's Fleet, made on first use with every pipeline w runs joined.
func (f *fleet) view(w string) *Fleet {
	if f.views[w] == nil {
		f.views[w] = NewFleet()
		for _, p := range f.runs[w] {
			f.views[w].join(p)
		}
	}
	return f.views[w]
}

func simKey(l Lease) string { return l.Pipeline + "/" + l.ShardID }

// round runs one round and returns how many leases changed owner or were asked for.
func (f *fleet) round(t *testing.T) int {
	snap := slices.Clone(f.leases)
	byID := map[string]int{}
	for i, l := range f.leases {
		byID[simKey(l)] = i
	}
	moves := 0
	var handoffs []struct {
		key string
		to  string
	}
	order := slices.Clone(f.workers)
	f.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, w := range order {
		pipes := slices.Clone(f.runs[w])
		f.rng.Shuffle(len(pipes), func(i, j int) { pipes[i], pipes[j] = pipes[j], pipes[i] })
		for _, p := range pipes {
			in := f.input(w, p, snap)
			pl := f.view(w).plan(p, func(elsewhere share, partial bool) leasePlan {
				in.Elsewhere, in.Partial = elsewhere, partial
				return plan(in)
			})
			if len(pl.Resume) > 0 || len(pl.Steal) > 0 {
				t.Fatalf("%s/%s: Plan() = resume %v, steal %v; the simulation runs what it owns and never lets a request wait", w, p, pl.Resume, pl.Steal)
			}
			for _, h := range pl.Handoff {
				handoffs = append(handoffs, struct{ key, to string }{p + "/" + h.ShardID, h.To})
			}
			took := f.take(w, pl.Adopt, len(pl.Adopt), byID) + f.take(w, pl.Take, pl.TakeUpTo, byID)
			asked := 0
			for _, l := range pl.Want {
				if cur := &f.leases[byID[simKey(l)]]; cur.Owner == l.Owner && cur.WantedBy == l.WantedBy {
					cur.WantedBy = w
					asked++
				}
			}
			f.views[w].adjust(p, w, took+asked-len(pl.Adopt)-min(pl.TakeUpTo, len(pl.Take))-len(pl.Want))
			if len(pl.Want) > asked {
				f.views[w].adjust(p, pl.Want[0].Owner, len(pl.Want)-asked)
			}
			moves += took + asked
		}
	}
	for _, h := range handoffs {
		cur := &f.leases[byID[h.key]]
		cur.Owner, cur.WantedBy = h.to, ""
		cur.Counter++
		moves++
	}
	for i, l := range f.leases {
		if l.Owner == "" && l.Counter == snap[i].Counter {
			f.still[simKey(l)]++
		} else {
			f.still[simKey(l)] = 0
		}
	}
	return moves
}

// input is worker w's view of pipeline p in snap.
func (f *fleet) input(w, p string, snap []Lease) planInput {
	in := planInput{Me: w, Ready: map[string]bool{}, Expired: map[string]bool{}, Stranded: map[string]bool{},
		Running: map[string]bool{}, MaxWants: maxWantsPerRound}
	for _, l := range snap {
		if l.Pipeline != p {
			continue
		}
		in.Leases = append(in.Leases, l)
		in.Ready[l.ShardID] = true
		switch {
		case l.Owner == w:
			in.Running[l.ShardID] = true
		case l.Owner != "" && !slices.Contains(f.workers, l.Owner):
			in.Expired[l.ShardID] = true
		case l.Owner == "" && f.still[simKey(l)] >= 2:
			in.Stranded[l.ShardID] = true
		}
	}
	for _, o := range f.workers {
		if slices.Contains(f.runs[o], p) {
			in.Live = append(in.Live, o)
		}
	}
	return in
}

// take takes up to n of list for w, each on the counter it saw, and returns how many it took.
func (f *fleet) take(w string, list []Lease, n int, byID map[string]int) int {
	taken := 0
	for i := 0; i < len(list) && taken < n; i++ {
		if cur := &f.leases[byID[simKey(list[i])]]; cur.Counter == list[i].Counter {
			cur.Owner, cur.WantedBy = w, ""
			cur.Counter++
			taken++
		}
	}
	return taken
}

// loads are the active leases each worker holds ("" for free ones).
func (f *fleet) loads() map[string]int {
	m := map[string]int{}
	for _, w := range f.workers {
		m[w] = 0
	}
	for _, l := range f.leases {
		m[l.Owner]++
	}
	return m
}

// settle runs rounds until nothing moved for three rounds in a row (a stranded lease waits two),
// failing after maxRounds, then ten more in which nothing may move, and returns the rounds it took.
func (f *fleet) settle(t *testing.T, what string, maxRounds int) int {
	t.Helper()
	rounds := 0
	for quiet := 0; quiet < 3; {
		quiet++
		if f.round(t) > 0 {
			quiet = 0
		}
		rounds++
		if rounds > maxRounds {
			t.Fatalf("%s: still moving after %d rounds, loads %v", what, rounds, f.loads())
		}
	}
	for range 10 {
		if moves := f.round(t); moves != 0 {
			t.Fatalf("%s: %d leases moved or were asked for after the fleet had settled (loads %v)", what, moves, f.loads())
		}
	}
	return rounds
}

// pipelinesOf returns leases of pipelines p0, p1, ... with sizes[i] shards each, all free.
func pipelinesOf(sizes ...int) []Lease {
	var out []Lease
	for i, n := range sizes {
		for j := range n {
			out = append(out, Lease{Pipeline: fmt.Sprintf("p%d", i), ShardID: fmt.Sprintf("shard-%02d", j), Counter: 1})
		}
	}
	return out
}

func workerIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("w%d", i)
	}
	return out
}

// checkLoads fails unless every lease is held and each worker holds lo..hi of them.
func checkLoads(t *testing.T, what string, f *fleet, lo, hi int) {
	t.Helper()
	for w, n := range f.loads() {
		if w == "" && n > 0 {
			t.Fatalf("%s: %d leases left free (loads %v)", what, n, f.loads())
		}
		if w != "" && (n < lo || n > hi) {
			t.Fatalf("%s: %s holds %d leases, want %d..%d (loads %v)", what, w, n, lo, hi, f.loads())
		}
	}
}

// TestPlanConvergesAcrossPipelines: the fair share is one over all the pipelines a process runs. Six
// one-shard pipelines on three workers settle at 2/2/2 from every possible start (each lease free or
// held by any of them), and pipelines of 1, 2, 3, 4 and 10 shards on four workers at 5/5/5/5, from
// all free, all on one worker, each pipeline on one worker, and random starts; then no lease moves.
// Killing a worker spreads its leases over the survivors across pipelines.
func TestPlanConvergesAcrossPipelines(t *testing.T) {
	t.Run("six one-shard pipelines on three workers, from every start", func(t *testing.T) {
		owners := []string{"", "w0", "w1", "w2"}
		starts := 1
		for range 6 {
			starts *= len(owners)
		}
		worst := 0
		for start := range starts {
			f := newFleet(pipelinesOf(1, 1, 1, 1, 1, 1), workerIDs(3), uint64(start))
			for i, s := 0, start; i < len(f.leases); i, s = i+1, s/len(owners) {
				f.leases[i].Owner = owners[s%len(owners)]
			}
			what := fmt.Sprintf("start %v", f.loads())
			worst = max(worst, f.settle(t, what, 8))
			checkLoads(t, what, f, 2, 2)
		}
		t.Logf("%d starts, each settled at 2/2/2 within %d rounds", starts, worst)
	})

	mixed := []struct {
		name  string
		start func(f *fleet)
	}{
		{"all free", func(f *fleet) {}},
		{"all on one worker", func(f *fleet) {
			for i := range f.leases {
				f.leases[i].Owner = "w0"
			}
		}},
		{"each pipeline on one worker", func(f *fleet) {
			for i := range f.leases {
				f.leases[i].Owner = fmt.Sprintf("w%c", f.leases[i].Pipeline[1]-'0'+'0')
				if f.leases[i].Owner == "w4" {
					f.leases[i].Owner = "w0"
				}
			}
		}},
		{"random", func(f *fleet) {
			for i := range f.leases {
				if n := f.rng.IntN(5); n < 4 {
					f.leases[i].Owner = fmt.Sprintf("w%d", n)
				}
			}
		}},
	}
	for _, tt := range mixed {
		t.Run("1, 2, 3, 4 and 10 shards on four workers, "+tt.name, func(t *testing.T) {
			for seed := range uint64(20) {
				f := newFleet(pipelinesOf(1, 2, 3, 4, 10), workerIDs(4), seed)
				tt.start(f)
				what := fmt.Sprintf("seed %d", seed)
				f.settle(t, what, 12)
				checkLoads(t, what, f, 5, 5)

				// kill -9 of a worker: its leases expire, the survivors share them, across pipelines.
				f.workers = []string{"w0", "w1", "w3"}
				f.settle(t, what+" after w2 died", 12)
				checkLoads(t, what+" after w2 died", f, 6, 7)
			}
		})
	}

	t.Run("six one-shard pipelines: the survivors of a kill hold 3/3", func(t *testing.T) {
		for seed := range uint64(20) {
			f := newFleet(pipelinesOf(1, 1, 1, 1, 1, 1), workerIDs(3), seed)
			f.settle(t, "start", 8)
			f.workers = []string{"w0", "w2"}
			f.settle(t, "after w1 died", 8)
			checkLoads(t, "after w1 died", f, 3, 3)
		}
	})
}

// TestPlanConvergesWithDifferentPipelineSets: replicas that run different sets of pipelines count
// only the pipelines they run, so their fair shares differ and each sees another's load only in the
// pipelines both run: no lease is left free (stranded leases are adopted) and once settled nothing
// moves, but the loads need not be even (see the README).
func TestPlanConvergesWithDifferentPipelineSets(t *testing.T) {
	tests := []struct {
		name   string
		sizes  []int
		runs   map[string][]string
		lo, hi int // of every worker's load once settled
	}{
		{
			name: "one replica runs both pipelines, the other one of them", sizes: []int{10, 10},
			runs: map[string][]string{"w0": {"p0"}, "w1": {"p0", "p1"}}, lo: 5, hi: 15,
		},
		{
			name: "three replicas, each with a pipeline of its own and one shared", sizes: []int{6, 4, 4, 4},
			runs: map[string][]string{"w0": {"p0", "p1"}, "w1": {"p0", "p2"}, "w2": {"p0", "p3"}}, lo: 4, hi: 10,
		},
	}
	for _, tt := range tests {
		for seed := range uint64(30) {
			f := newFleet(pipelinesOf(tt.sizes...), workerIDs(len(tt.runs)), seed)
			f.runs = tt.runs
			what := fmt.Sprintf("%s (seed %d)", tt.name, seed)
			f.settle(t, what, 30)
			checkLoads(t, what, f, tt.lo, tt.hi)
		}
	}
}
