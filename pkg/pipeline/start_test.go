package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

func TestFirstRunStarts(t *testing.T) {
	open := func(id, parent string) shards.Shard { return shards.Shard{ID: id, ParentID: parent} }
	closed := func(id, parent string) shards.Shard {
		return shards.Shard{ID: id, ParentID: parent, EndSeq: "9"}
	}
	latest := firstStart{StartAt: checkpoint.StartLatest}
	skipped := firstStart{StartAt: checkpoint.StartSkipped, Finished: true}
	horizon := firstStart{}
	for _, tc := range []struct {
		name     string
		position config.StartingPosition
		list     []shards.Shard
		leases   []checkpoint.Lease
		want     map[string]firstStart
	}{{
		name:     "TRIM_HORIZON reads every shard from its horizon",
		position: config.TrimHorizon,
		list:     []shards.Shard{closed("p", ""), open("c", "p")},
		want:     map[string]firstStart{"p": horizon, "c": horizon},
	}, {
		name:     "LATEST skips closed shards and starts open ones at their tip",
		position: config.Latest,
		list:     []shards.Shard{closed("p", "gone"), closed("q", "p"), open("c", "q"), open("d", "")},
		want:     map[string]firstStart{"p": skipped, "q": skipped, "c": latest, "d": latest},
	}, {
		name:     "a child listed before its parent is decided after it",
		position: config.Latest,
		list:     []shards.Shard{open("c", "p"), closed("p", "")},
		want:     map[string]firstStart{"p": skipped, "c": latest},
	}, {
		name:     "a child of a shard read at LATEST by a decider that died half-way starts at its horizon",
		position: config.Latest,
		list:     []shards.Shard{closed("p", ""), open("c", "p")},
		leases:   []checkpoint.Lease{{ShardID: "p", StartAt: checkpoint.StartLatest}},
		want:     map[string]firstStart{"c": horizon},
	}, {
		name:     "a child of a shard the dead decider skipped starts at its tip",
		position: config.Latest,
		list:     []shards.Shard{closed("p", ""), open("c", "p")},
		leases:   []checkpoint.Lease{{ShardID: "p", StartAt: checkpoint.StartSkipped, Finished: true}},
		want:     map[string]firstStart{"c": latest},
	}, {
		name:     "a closed child of a shard being read is read, and so is its child",
		position: config.Latest,
		list:     []shards.Shard{closed("c", "p"), open("g", "c")},
		leases:   []checkpoint.Lease{{ShardID: "p"}},
		want:     map[string]firstStart{"c": horizon, "g": horizon},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			leases := map[string]checkpoint.Lease{}
			for _, l := range tc.leases {
				leases[l.ShardID] = l
			}
			if got := firstRunStarts(string(tc.position), tc.list, leases); !maps.Equal(got, tc.want) {
				t.Errorf("firstRunStarts() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartOf(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		lease checkpoint.Lease
		want  shardStart
	}{
		{"a checkpoint wins", checkpoint.Lease{Checkpoint: "7", StartAt: checkpoint.StartLatest, StartSeq: "5"}, shardStart{Pos: shards.After("7")}},
		{"a pinned LATEST lease resumes at its first record read", checkpoint.Lease{StartAt: checkpoint.StartLatest, StartSeq: "5", StartTime: at},
			shardStart{Pos: shards.Position{Type: "AT_SEQUENCE_NUMBER", Seq: "5"}}},
		{"a LATEST lease resolved on an idle shard resumes at the horizon, skipping what came before", checkpoint.Lease{StartAt: checkpoint.StartLatest, StartTime: at},
			shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: at.Add(-latestSkew)}},
		{"an idle LATEST lease left with its iterator reads on from it", checkpoint.Lease{StartAt: checkpoint.StartLatest, StartTime: at, StartIterator: "it"},
			shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: at.Add(-latestSkew), Iterator: "it"}},
		{"an unresolved LATEST lease is resolved and pinned", checkpoint.Lease{StartAt: checkpoint.StartLatest},
			shardStart{Pos: shards.Latest, Resolve: true, Pin: true}},
		{"an AT_TIMESTAMP lease reads from the horizon, skipping exactly what came before its time", checkpoint.Lease{StartAt: checkpoint.StartAtTime, StartTime: at},
			shardStart{Pos: shards.TrimHorizon, Pin: true, SkipBefore: at}},
		{"a pinned AT_TIMESTAMP lease resumes at its first record", checkpoint.Lease{StartAt: checkpoint.StartAtTime, StartTime: at, StartSeq: "5"},
			shardStart{Pos: shards.Position{Type: "AT_SEQUENCE_NUMBER", Seq: "5"}}},
		{"any other lease starts at the horizon", checkpoint.Lease{}, shardStart{Pos: shards.TrimHorizon}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := startOf(tc.lease); got != tc.want {
				t.Errorf("startOf() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// offsetClock is the system clock moved by an offset, for records created in the past.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// failingSink fails every call while fail is set, and records what it accepted.
type failingSink struct {
	fail   atomic.Bool
	shared *sharedSink
}

func (s *failingSink) Deliver(ctx context.Context, b sinks.Batch) error {
	if s.fail.Load() {
		return errors.New("the sink is broken")
	}
	return replicaSink{s.shared, "x"}.Deliver(ctx, b)
}

func (s *failingSink) Close(context.Context) error { return nil }

// startTestPipeline runs a pipeline until the returned crash (ctx canceled: no release, no drain) or
// stop (graceful) is called; t's cleanup stops it if neither was.
func startTestPipeline(t *testing.T, cfg config.Pipeline, deps Deps) (p *Pipeline, m *metrics.Metrics, crash, stop func()) {
	t.Helper()
	m = metrics.New(prometheus.NewRegistry())
	deps.Hooks, deps.LeaseDuration, deps.RenewInterval = append(deps.Hooks, m.Pipeline(cfg.Name)), 2*time.Second, 250*time.Millisecond
	p, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	p.RefreshInterval = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	quit, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- p.Run(ctx, quit) }()
	var once sync.Once
	end := func(graceful bool) {
		once.Do(func() {
			if graceful {
				close(quit)
			} else {
				cancel()
			}
			<-done
			cancel()
		})
	}
	t.Cleanup(func() { end(true) })
	return p, m, func() { end(false) }, func() { end(true) }
}

// TestLatestIsResolvedOnce: a pipeline first run with LATEST and a broken sink is killed before any
// checkpoint; the next worker (a fixed sink) delivers every record written after the first start, and
// none written before it: LATEST is never resolved a second time. Both when the first worker had read
// records (pinned at the first one) and when its shard was idle (pinned at the moment it resolved).
func TestLatestIsResolvedOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		idle bool // no record is written between the first start and the crash
	}{{"records read before the crash", false}, {"idle shard before the crash", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &offsetClock{}
			srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t), Clock: clock})
			st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
			put := func(shard, key string) {
				k := streamstest.S(key)
				st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
			}
			shard := st.OpenShard("")
			clock.offset.Store(int64(-time.Hour)) // history, well before the start
			for i := range 3 {
				put(shard, fmt.Sprintf("old-%d", i))
			}
			clock.offset.Store(0)

			store := leaseStoreForTest(t)
			cfg := config.DefaultPipeline()
			cfg.Name, cfg.Source.StreamARN = "latest-once", st.ARN()
			cfg.Source.StartingPosition = config.Latest
			shared := &sharedSink{}
			broken := &failingSink{shared: shared}
			broken.fail.Store(true)
			_, m, crash, _ := startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: store, Sink: broken, WorkerID: "a"})
			lease := func() checkpoint.Lease {
				leases, _, err := store.List(t.Context(), cfg.Name)
				if err != nil || len(leases) != 1 {
					t.Fatalf("List() = %v, %v; want one lease", leases, err)
				}
				return leases[0]
			}
			pollUntil(t, "the LATEST iterator to be read", func() bool {
				return testutil.ToFloat64(m.GetRecords.WithLabelValues(cfg.Name, "ok")) > 0
			})
			if tc.idle {
				if l := lease(); l.StartTime.IsZero() || l.StartSeq != "" {
					t.Fatalf("lease before the crash: start_time %v, start_seq %q; want a start time and no sequence number", l.StartTime, l.StartSeq)
				}
			} else {
				put(shard, "new-0")
				put(shard, "new-1")
				pollUntil(t, "the first record read to be pinned", func() bool { return lease().StartSeq != "" })
			}
			crash()
			if l := lease(); l.Checkpoint != "" || len(shared.snapshot()) != 0 {
				t.Fatalf("before the restart: checkpoint %q, delivered %v; want nothing delivered", l.Checkpoint, shared.snapshot())
			}
			if tc.idle {
				put(shard, "new-0") // written while no worker runs
				put(shard, "new-1")
			}

			fixed := &failingSink{shared: shared}
			startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: store, Sink: fixed, WorkerID: "b"})
			put(shard, "new-2")
			want := []string{"new-0", "new-1", "new-2"}
			pollUntil(t, "every record written after the first start", func() bool { return len(shared.snapshot()) >= len(want) })
			var got []string
			for _, d := range shared.snapshot() {
				got = append(got, d.key)
			}
			if !slices.Equal(got, want) {
				t.Errorf("delivered %v, want %v (every record after the first start, none before it)", got, want)
			}
		})
	}
}

// TestIdleLatestLeaseResumesExactlyAfterAGracefulStop: a LATEST lease whose shard got no record
// before its worker stopped gracefully is resumed from that worker's iterator: none of the records
// written just before the start (too recent for the creation-time skip) is delivered, every one
// written after it is.
func TestIdleLatestLeaseResumesExactlyAfterAGracefulStop(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	put := func(shard, key string) {
		k := streamstest.S(key)
		st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	}
	shard := st.OpenShard("")
	for i := range 3 {
		put(shard, fmt.Sprintf("old-%d", i)) // a moment before the start
	}
	store := leaseStoreForTest(t)
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = "idle-latest", st.ARN()
	cfg.Source.StartingPosition = config.Latest
	shared := &sharedSink{}
	_, m, _, stop := startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: store, Sink: replicaSink{shared, "a"}, WorkerID: "a"})
	pollUntil(t, "the LATEST iterator to be read", func() bool {
		return testutil.ToFloat64(m.GetRecords.WithLabelValues(cfg.Name, "ok")) > 0
	})
	stop()
	leases, _, err := store.List(t.Context(), cfg.Name)
	if err != nil || len(leases) != 1 || leases[0].StartIterator == "" || leases[0].Owner != "" {
		t.Fatalf("lease after a graceful stop = %+v, %v; want it released with the idle shard's iterator", leases, err)
	}
	put(shard, "new-0") // while no worker runs
	startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: store, Sink: replicaSink{shared, "b"}, WorkerID: "b"})
	put(shard, "new-1")
	pollUntil(t, "the new records", func() bool { return len(shared.snapshot()) >= 2 })
	var got []string
	for _, d := range shared.snapshot() {
		got = append(got, d.key)
	}
	if want := []string{"new-0", "new-1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (none of the records from before the start)", got, want)
	}
}

// gatedStore lets a test hold a worker's lease creations (after the first) until a gate opens, and
// counts its Lists.
type gatedStore struct {
	LeaseStore
	gate    chan struct{}
	creates atomic.Int32
	lists   atomic.Int32
	onList  func(n int32)
}

func (g *gatedStore) Create(ctx context.Context, l checkpoint.Lease) (bool, error) {
	if g.gate != nil && g.creates.Add(1) > 1 {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return g.LeaseStore.Create(ctx, l)
}

func (g *gatedStore) List(ctx context.Context, pipeline string) ([]checkpoint.Lease, []checkpoint.Worker, error) {
	n := g.lists.Add(1)
	if g.onList != nil {
		g.onList(n)
	}
	return g.LeaseStore.List(ctx, pipeline)
}

// TestFirstRunIsDecidedOnceForTheFleet: two workers start together on a stream with history and
// starting_position LATEST; the second lists the table while the first has created only some of the
// leases. It must not create the rest at TRIM_HORIZON (and replay the history): no record from before
// the start is delivered, and every shard open at the start gets a LATEST lease.
func TestFirstRunIsDecidedOnceForTheFleet(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	ids := st.OpenShards(4)
	put := func(prefix string) {
		for i, sh := range ids {
			k := streamstest.S(fmt.Sprintf("%s-%d", prefix, i))
			st.Put(sh, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
		}
	}
	put("old")
	store := leaseStoreForTest(t)
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = "decided-once", st.ARN()
	cfg.Source.StartingPosition = config.Latest
	shared := &sharedSink{}

	gate := make(chan struct{})
	a := &gatedStore{LeaseStore: store, gate: gate}
	var once sync.Once
	b := &gatedStore{LeaseStore: store, onList: func(n int32) {
		if n == 3 { // b's first round (List, refresh) is over: let a go on
			once.Do(func() { close(gate) })
		}
	}}
	_, ma, _, _ := startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: a, Sink: replicaSink{shared, "a"}, WorkerID: "a"})
	pollUntil(t, "a to create its first lease", func() bool {
		leases, _, err := store.List(t.Context(), cfg.Name)
		return err == nil && len(leases) == 1
	})
	_, mb, _, _ := startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: b, Sink: replicaSink{shared, "b"}, WorkerID: "b"})

	pollUntil(t, "every shard to be read", func() bool {
		leases, _, err := store.List(t.Context(), cfg.Name)
		return err == nil && len(leases) == len(ids) &&
			testutil.ToFloat64(ma.LeasesOwned.WithLabelValues(cfg.Name))+testutil.ToFloat64(mb.LeasesOwned.WithLabelValues(cfg.Name)) == float64(len(ids))
	})
	leases, _, err := store.List(t.Context(), cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.StartAt != checkpoint.StartLatest {
			t.Errorf("lease %s: start_at %q, want %q (every shard open at the first start)", l.ShardID, l.StartAt, checkpoint.StartLatest)
		}
	}
	// Once every LATEST lease is resolved, new records flow; old ones must never arrive.
	pollUntil(t, "every lease to be resolved", func() bool {
		leases, _, err := store.List(t.Context(), cfg.Name)
		if err != nil {
			return false
		}
		for _, l := range leases {
			if l.StartTime.IsZero() {
				return false
			}
		}
		return true
	})
	put("new")
	pollUntil(t, "the new records", func() bool { return len(shared.snapshot()) >= len(ids) })
	for _, d := range shared.snapshot() {
		if d.key[:3] != "new" {
			t.Errorf("%s delivered by %s: a record from before the first start", d.key, d.worker)
		}
	}
}

// TestHandoffToAGoneRequesterReleases: the owner drains a lease asked for by worker b, and b stops
// (its heartbeat item removed) before the drain ends: the owner releases the lease instead of
// handing it to b, so it is taken again at once rather than standing idle for lease_duration.
func TestHandoffToAGoneRequesterReleases(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	shard := st.OpenShard("")
	store := leaseStoreForTest(t)
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = "gone-requester", st.ARN()

	// The sink holds the first call until released: the drain for the handoff waits for it.
	hold, held := make(chan struct{}), make(chan struct{})
	var first sync.Once
	sink := sinkFunc(func(ctx context.Context, b sinks.Batch) error {
		first.Do(func() {
			close(held)
			select {
			case <-hold:
			case <-ctx.Done():
			}
		})
		return nil
	})
	var lists atomic.Int32
	a := &gatedStore{LeaseStore: store, onList: func(int32) { lists.Add(1) }}
	startTestPipeline(t, cfg, Deps{Streams: srv.Client(), Store: a, Sink: sink, WorkerID: "a"})
	lease := func() checkpoint.Lease {
		leases, _, err := store.List(t.Context(), cfg.Name)
		if err != nil || len(leases) != 1 {
			t.Fatalf("List() = %v, %v; want one lease", leases, err)
		}
		return leases[0]
	}
	pollUntil(t, "a to hold the lease", func() bool {
		leases, _, err := store.List(t.Context(), cfg.Name)
		return err == nil && len(leases) == 1 && leases[0].Owner == "a"
	})
	k := streamstest.S("r-0")
	st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	<-held

	// b heartbeats (a counts it live from its first sight) and asks for the lease.
	beat, err := store.Heartbeat(t.Context(), cfg.Name, "b")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := store.Want(t.Context(), lease(), "b"); !ok || err != nil {
		t.Fatalf("Want() = %v, %v", ok, err)
	}
	// a sees the request (and b live) in a round, and starts draining: wait two more rounds.
	seen := lists.Load()
	pollUntil(t, "two rounds of a", func() bool { return lists.Load() >= seen+2 })
	// b stops cleanly: its item goes. Once a listed again, the drain may end.
	if ok, err := store.DeleteWorker(t.Context(), checkpoint.Worker{Pipeline: cfg.Name, ID: "b", Counter: beat}); !ok || err != nil {
		t.Fatalf("DeleteWorker() = %v, %v", ok, err)
	}
	seen = lists.Load()
	pollUntil(t, "two more rounds of a", func() bool { return lists.Load() >= seen+2 })
	close(hold)

	pollUntil(t, "the request to be answered and a to hold the lease again", func() bool {
		l := lease()
		return l.WantedBy == "" && l.Owner == "a"
	})
	if l := lease(); l.Takeovers != 0 {
		t.Errorf("lease takeovers = %d, want 0: the lease went to the gone worker b and back, instead of being released", l.Takeovers)
	}
}

// sinkFunc is a sink made of a function.
type sinkFunc func(ctx context.Context, b sinks.Batch) error

func (f sinkFunc) Deliver(ctx context.Context, b sinks.Batch) error { return f(ctx, b) }
func (f sinkFunc) Close(context.Context) error                      { return nil }

// slowLatest holds each GetShardIterator at LATEST until release is closed or hold has passed: the
// moment between a worker resolving a LATEST lease and DynamoDB Streams taking its tip, widened.
type slowLatest struct {
	StreamsAPI
	release chan struct{}
	hold    time.Duration
}

func (s *slowLatest) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if in.ShardIteratorType == streamtypes.ShardIteratorTypeLatest {
		t := time.NewTimer(s.hold)
		defer t.Stop()
		select {
		case <-s.release:
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.StreamsAPI.GetShardIterator(ctx, in, opts...)
}

// TestLatestStartTimeMeansTheTipIsTaken: once a LATEST lease shows its start_time, every record
// written after it is delivered, however long DynamoDB Streams takes to answer for the LATEST
// iterator. start_time used to be stored before the iterator was asked for: a record written in
// between (here: as soon as the lease shows its start) was before the tip the worker read from, and
// was never delivered (two replicas started together lost the first records of a shard so).
func TestLatestStartTimeMeansTheTipIsTaken(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", streamstest.NewAndOldImages, streamstest.WithKeySchema("pk"))
	put := func(shard, key string) {
		k := streamstest.S(key)
		st.Put(shard, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
	}
	shard := st.OpenShard("")
	put(shard, "old-0") // before the start
	store := leaseStoreForTest(t)
	cfg := config.DefaultPipeline()
	cfg.Name, cfg.Source.StreamARN = fmt.Sprintf("latest-tip-%d", time.Now().UnixNano()), st.ARN()
	cfg.Source.StartingPosition = config.Latest
	shared := &sharedSink{}
	api := &slowLatest{StreamsAPI: srv.Client(), release: make(chan struct{}), hold: time.Second}
	_, m, _, _ := startTestPipeline(t, cfg, Deps{Streams: api, Store: store, Sink: replicaSink{shared, "a"}, WorkerID: "a"})
	pollUntil(t, "the lease to show its start", func() bool {
		leases, _, err := store.List(t.Context(), cfg.Name)
		return err == nil && len(leases) == 1 && !leases[0].StartTime.IsZero()
	})
	put(shard, "new-0") // after the start as the lease shows it
	close(api.release)
	pollUntil(t, "the shard to be read", func() bool {
		return testutil.ToFloat64(m.GetRecords.WithLabelValues(cfg.Name, "ok")) > 0
	})
	put(shard, "new-1")
	pollUntil(t, "the last record written", func() bool {
		return slices.ContainsFunc(shared.snapshot(), func(d delivery) bool { return d.key == "new-1" })
	})
	var got []string
	for _, d := range shared.snapshot() {
		got = append(got, d.key)
	}
	if want := []string{"new-0", "new-1"}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (every record written after the lease showed its start)", got, want)
	}
}
