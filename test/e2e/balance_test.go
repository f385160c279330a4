package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
)

// fleetEnv is several pipelines, each reading a stream of its own, shared by several poller processes
// through one lease table: the fair share is one over all of them.
type fleetEnv struct {
	srv       *streamstest.Server
	arns      []string // by pipeline: pipeline i is "p<i>"
	leases    *checkpoint.Store
	table     string
	sink      *sink
	shards    int // over every pipeline
	pipelines []string
}

func newFleetEnv(t *testing.T, sizes ...int) *fleetEnv {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	table := fmt.Sprintf("leases-%d", time.Now().UnixNano()) // the shared DynamoDB Local outlives one run
	e := &fleetEnv{srv: srv, leases: checkpoint.New(dynamo(testenv.DynamoDBLocal(t)), table), table: table, sink: newSink(t)}
	for i, n := range sizes {
		st := srv.CreateStream(fmt.Sprintf("Table%d", i), types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
		st.OpenShards(n)
		e.arns = append(e.arns, st.ARN())
		e.pipelines = append(e.pipelines, fmt.Sprintf("p%d", i))
		e.shards += n
	}
	return e
}

// start runs a poller process named name with every pipeline.
func (e *fleetEnv) start(t *testing.T, name string) *proc {
	var b strings.Builder
	fmt.Fprintf(&b, `aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: %s
  worker_id: %s
  lease_duration: %s
  renew_interval: %s
server:
  listen: 127.0.0.1:%d
log:
  level: debug
pipelines:
`, e.srv.URL, e.table, name, leaseDuration, renewInterval, freePort(t))
	for i, arn := range e.arns {
		fmt.Fprintf(&b, `  - name: %s
    source:
      stream_arn: %s
    sink:
      type: http
      url: %s
`, e.pipelines[i], arn, e.sink.srv.URL)
	}
	return startPoller(t, b.String())
}

// leaseState is what says a lease moved: its owner, its takeovers and a pending request.
type leaseState struct {
	owner, wantedBy string
	takeovers       int64
}

// snapshot lists every pipeline's unfinished leases, by "pipeline/shard"; false when a List failed
// (the table may not exist yet).
func (e *fleetEnv) snapshot(t *testing.T) (map[string]leaseState, bool) {
	m := map[string]leaseState{}
	for _, p := range e.pipelines {
		leases, _, err := e.leases.List(t.Context(), p)
		if err != nil {
			return nil, false
		}
		for _, l := range leases {
			if !l.Finished {
				m[p+"/"+l.ShardID] = leaseState{owner: l.Owner, wantedBy: l.WantedBy, takeovers: l.Takeovers}
			}
		}
	}
	return m, true
}

func fleetLoads(s map[string]leaseState) map[string]int {
	m := map[string]int{}
	for _, l := range s {
		m[l.owner]++
	}
	return m
}

// balanced says whether every lease is held by one of workers, each holding lo..hi, with no request
// pending.
func (e *fleetEnv) balanced(s map[string]leaseState, workers []string, lo, hi int) bool {
	if len(s) != e.shards {
		return false
	}
	for _, l := range s {
		if l.wantedBy != "" || !slices.Contains(workers, l.owner) {
			return false
		}
	}
	loads := fleetLoads(s)
	for _, w := range workers {
		if loads[w] < lo || loads[w] > hi {
			return false
		}
	}
	return true
}

// waitBalanced polls the lease table until balanced (see balanced) and returns the state and how long
// it took since since; it fails after timeout.
func (e *fleetEnv) waitBalanced(t *testing.T, since time.Time, workers []string, lo, hi int, timeout time.Duration) (map[string]leaseState, time.Duration) {
	t.Helper()
	var last map[string]leaseState
	for {
		if s, ok := e.snapshot(t); ok {
			last = s
			if e.balanced(s, workers, lo, hi) {
				return s, time.Since(since)
			}
		}
		if time.Since(since) > timeout {
			t.Fatalf("after %s the leases are held %v, want all %d held by %v, %d..%d each, no request pending",
				timeout, fleetLoads(last), e.shards, workers, lo, hi)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holdStill fails if, within d, any lease changes owner or takeovers, or is asked for: judged from
// the lease table alone, against the state at balance.
func (e *fleetEnv) holdStill(t *testing.T, at map[string]leaseState, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		s, ok := e.snapshot(t)
		if !ok {
			continue
		}
		for k, l := range s {
			if l != at[k] {
				t.Fatalf("lease %s went from %+v to %+v while the fleet was balanced (loads %v)", k, at[k], l, fleetLoads(s))
			}
		}
		if len(s) != len(at) {
			t.Fatalf("%d leases listed, %d at balance", len(s), len(at))
		}
	}
}

// mostLoaded is the worker holding the most leases in s (ties: the first name).
func mostLoaded(s map[string]leaseState) string {
	loads := fleetLoads(s)
	best := ""
	for _, w := range slices.Sorted(maps.Keys(loads)) {
		if w != "" && (best == "" || loads[w] > loads[best]) {
			best = w
		}
	}
	return best
}

// pipelinesOf returns the pipelines of the leases w holds in s, sorted.
func pipelinesOf(s map[string]leaseState, w string) []string {
	var out []string
	for k, l := range s {
		if p := k[:strings.IndexByte(k, '/')]; l.owner == w && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// balanceAcrossPipelines starts workers on the pipelines of sizes together, waits for lo..hi leases
// each within 30 s of the last one's start, checks that no lease moves for a minute, kills the most
// loaded worker with kill -9 and waits for the survivors to hold afterLo..afterHi each.
func balanceAcrossPipelines(t *testing.T, workers []string, lo, hi, afterLo, afterHi int, sizes ...int) {
	e := newFleetEnv(t, sizes...)
	execd := time.Now()
	procs := map[string]*proc{}
	for _, w := range workers {
		procs[w] = e.start(t, w)
	}
	// A process has started once its lease table is reachable (it logs "poller started"): before
	// that, a race-enabled binary on a loaded machine spends seconds on things other than leases.
	waitFor(t, "every process to start", time.Minute, func() bool {
		for _, p := range procs {
			if !strings.Contains(p.log.String(), `"msg":"poller started"`) {
				return false
			}
		}
		return true
	})
	began := time.Now()
	at, took := e.waitBalanced(t, began, workers, lo, hi, 30*time.Second)
	t.Logf("balanced over %d pipelines (%v shards): loads %v, %s after the last of the %d processes started (%s after they were run)",
		len(sizes), sizes, fleetLoads(at), took.Round(10*time.Millisecond), len(workers), time.Since(execd).Round(10*time.Millisecond))
	e.holdStill(t, at, time.Minute)
	t.Logf("no lease changed owner or takeovers, and none was asked for, for a minute")

	victim := mostLoaded(at)
	lost := pipelinesOf(at, victim)
	procs[victim].stop(t, syscall.SIGKILL)
	killed := time.Now()
	survivors := slices.DeleteFunc(slices.Clone(workers), func(w string) bool { return w == victim })
	after, failover := e.waitBalanced(t, killed, survivors, afterLo, afterHi, 30*time.Second)
	var spread []string
	for k, l := range after {
		if at[k].owner == victim {
			spread = append(spread, fmt.Sprintf("%s -> %s", k, l.owner))
		}
	}
	slices.Sort(spread)
	t.Logf("kill -9 of %s (holding leases of %v): the survivors hold %v, %s after the kill; its leases went %v",
		victim, lost, fleetLoads(after), failover.Round(10*time.Millisecond), spread)
	for _, w := range survivors {
		if code := procs[w].stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", w, code)
		}
	}
}

// TestBalanceSixSingleShardPipelinesOnThreeReplicas: six pipelines of one shard each on three
// processes settle at 2/2/2 (a fair share per pipeline gave 4/2/0), stay there for a minute, and the
// two leases of a replica killed with kill -9 go one to each survivor: 3/3.
func TestBalanceSixSingleShardPipelinesOnThreeReplicas(t *testing.T) {
	balanceAcrossPipelines(t, []string{"a", "b", "c"}, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1)
}

// TestBalanceMixedPipelinesOnFourReplicas: pipelines of 1, 2, 3, 4 and 10 shards on four processes
// settle at 5/5/5/5, stay there for a minute, and after kill -9 of one the three survivors hold 7, 7
// and 6.
func TestBalanceMixedPipelinesOnFourReplicas(t *testing.T) {
	balanceAcrossPipelines(t, []string{"a", "b", "c", "d"}, 5, 5, 6, 7, 1, 2, 3, 4, 10)
}
