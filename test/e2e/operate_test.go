package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/control"
)

// The operator's commands (status, pause, resume, reset) run as the real binary against the lease
// table of running replicas: the stream comes from the Streams test endpoint (many shards, splits,
// records with chosen creation times), the lease table is DynamoDB Local's.

// opResult is one run of an operator command.
type opResult struct {
	code           int
	stdout, stderr string
}

// op runs `poller <args...> --config <the env's config>`.
func (e *replicaEnv) op(t *testing.T, args ...string) opResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poller.yaml")
	if err := os.WriteFile(path, []byte(e.cfg.yaml(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pollerBin, append(args, "--config", path)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	if _, exited := errors.AsType[*exec.ExitError](err); err != nil && !exited {
		t.Fatalf("run poller %v: %v", args, err)
	}
	return opResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errs.String()}
}

// mustOp runs an operator command that must exit 0.
func (e *replicaEnv) mustOp(t *testing.T, args ...string) string {
	t.Helper()
	r := e.op(t, args...)
	if r.code != 0 {
		t.Fatalf("poller %v exited %d, want 0; stderr:\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

// leaseCounters returns each unfinished lease's owner and counter.
func (e *replicaEnv) leaseCounters(t *testing.T) map[string]checkpoint.Lease {
	t.Helper()
	leases, _, err := e.leases.List(t.Context(), "e2e")
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	m := map[string]checkpoint.Lease{}
	for _, l := range leases {
		m[l.ShardID] = l
	}
	return m
}

// waitLogged waits until every process logged msg.
func waitLogged(t *testing.T, msg string, procs ...*proc) {
	t.Helper()
	waitFor(t, "every process to log "+msg, 30*time.Second, func() bool {
		for _, p := range procs {
			if !strings.Contains(p.log.String(), msg) {
				return false
			}
		}
		return true
	})
}

// waitQuiet waits until neither GetRecords calls nor sink deliveries moved for a whole renew
// interval, and returns the sink's count then.
func waitQuiet(t *testing.T, e *replicaEnv) int {
	t.Helper()
	reads, got := e.srv.Calls("GetRecords"), e.sink.count()
	stillSince := time.Now()
	waitFor(t, "reads and deliveries to stop", 30*time.Second, func() bool {
		r, n := e.srv.Calls("GetRecords"), e.sink.count()
		if r != reads || n != got || e.sink.inflight.Load() > 0 {
			reads, got, stillSince = r, n, time.Now()
			return false
		}
		return time.Since(stillSince) >= 2*renewInterval
	})
	return got
}

// TestPauseStopsEveryReplicaUntilResume: two replicas share four shards; `poller pause` stops reads
// and deliveries on both with no restart (no GetRecords while paused), no lease moves and every
// lease stays renewed; the records written while paused arrive only after `poller resume`, none
// lost.
func TestPauseStopsEveryReplicaUntilResume(t *testing.T) {
	e := newReplicaEnv(t, 4)
	stopWriting := e.write(t, 100*time.Millisecond)
	a, b := e.start(t, "a"), e.start(t, "b")
	e.waitOwned(t, time.Now(), []string{"a", "b"}, 2, 2, 30*time.Second)
	waitFor(t, "deliveries", 30*time.Second, func() bool { return e.sink.count() > 0 })

	pausedAt := time.Now()
	if out := e.mustOp(t, "pause", "--pipeline", "e2e"); !strings.Contains(out, "paused") {
		t.Fatalf("pause printed %q, want it to say the pipeline is paused", out)
	}
	waitLogged(t, "pipeline paused", a, b)
	before := e.leaseCounters(t)
	quietAt := waitQuiet(t, e)
	last := time.Time{}
	for _, r := range e.sink.snapshot() {
		if r.At.After(last) {
			last = r.At
		}
	}
	t.Logf("last delivery %s after the pause command (renew_interval %s)", last.Sub(pausedAt).Round(time.Millisecond), renewInterval)

	// Paused for a few lease durations: nothing read or delivered, leases neither moved nor expired.
	reads := e.srv.Calls("GetRecords")
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(2 * leaseDuration); time.Now().Before(end); <-tick.C {
		if n := e.sink.count(); n != quietAt {
			t.Fatalf("%d records delivered while paused", n-quietAt)
		}
		if r := e.srv.Calls("GetRecords"); r != reads {
			t.Fatalf("%d GetRecords calls while paused", r-reads)
		}
	}
	after := e.leaseCounters(t)
	for id, l := range before {
		if after[id].Owner != l.Owner || l.Owner == "" {
			t.Fatalf("lease %s moved from %q to %q while paused", id, l.Owner, after[id].Owner)
		}
		if after[id].Counter <= l.Counter {
			t.Fatalf("lease %s was not renewed while paused (counter %d, then %d)", id, l.Counter, after[id].Counter)
		}
	}
	status := e.statusDoc(t)
	if !status.Pipelines[0].Paused {
		t.Fatalf("status says paused = false after pause")
	}

	resumedAt := time.Now()
	e.mustOp(t, "resume", "--pipeline", "e2e")
	waitFor(t, "deliveries after resume", 30*time.Second, func() bool { return e.sink.count() > quietAt })
	perShard := stopWriting()
	e.waitDelivered(t, perShard)
	stopAll(t, e, a, b)
	delivered := distinct(e.sink.snapshot()[:quietAt])
	late := 0
	for _, r := range e.sink.snapshot()[quietAt:] {
		if r.At.Before(resumedAt) {
			t.Fatalf("record %s arrived at %s, while paused (resumed at %s)", r.Key, r.At, resumedAt)
		}
		if !delivered[r.Key] {
			late++
		}
	}
	if late == 0 {
		t.Fatalf("no record written while paused arrived after resume")
	}
	t.Logf("%d records written while paused arrived after resume; all %d per shard delivered", late, perShard)
}

// statusDoc runs `poller status --json` and decodes it.
func (e *replicaEnv) statusDoc(t *testing.T) control.Document {
	t.Helper()
	out := e.mustOp(t, "status", "--json")
	var doc control.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status --json printed no document: %v\n%s", err, out)
	}
	if len(doc.Pipelines) != 1 {
		t.Fatalf("status --json has %d pipelines, want 1:\n%s", len(doc.Pipelines), out)
	}
	return doc
}

// putKeys puts one record per key into shard, created at created (zero: now), and returns their
// sequence numbers.
func putKeys(st *streamstest.Stream, shard string, created time.Time, keys ...string) []string {
	recs := make([]streamstest.Record, 0, len(keys))
	for _, k := range keys {
		r := streamstest.Insert(streamstest.Item{"pk": streamstest.S(k)}, streamstest.Item{"pk": streamstest.S(k)})
		r.CreatedAt = created
		recs = append(recs, r)
	}
	return st.Put(shard, recs...)
}

func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return out
}

// waitCount waits until every key arrived at least n times.
func waitCount(t *testing.T, e *replicaEnv, n int, ks ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d keys to arrive %d times", len(ks), n), time.Minute, func() bool {
		got := byKey(e.sink.snapshot())
		for _, k := range ks {
			if got[k] < n {
				return false
			}
		}
		return true
	})
}

// TestResetNeedsPauseAndReplaysFromTheStart: reset on a running pipeline exits 2 and says to pause
// it first; reset --to TRIM_HORIZON on the paused pipeline re-delivers every shard from its first
// record after resume, though the replica kept the leases (and their old positions) while paused.
func TestResetNeedsPauseAndReplaysFromTheStart(t *testing.T) {
	e := newReplicaEnv(t, 2)
	var all []string
	for i, sh := range e.shards {
		ks := keys(fmt.Sprintf("s%02d", i), 5)
		putKeys(e.st, sh, time.Time{}, ks...)
		all = append(all, ks...)
	}
	a := e.start(t, "a")
	waitCount(t, e, 1, all...)

	r := e.op(t, "reset", "--pipeline", "e2e", "--to", "TRIM_HORIZON")
	if r.code != 2 || !strings.Contains(r.stderr, "pause it first") {
		t.Fatalf("reset on a running pipeline: exit %d, stderr %q; want exit 2 saying to pause it first", r.code, r.stderr)
	}

	e.mustOp(t, "pause", "--pipeline", "e2e")
	waitLogged(t, "pipeline paused", a)
	out := e.mustOp(t, "reset", "--pipeline", "e2e", "--to", "TRIM_HORIZON")
	for _, sh := range e.shards {
		if !strings.Contains(out, sh+": ") {
			t.Fatalf("reset did not print its change of shard %s:\n%s", sh, out)
		}
	}
	e.mustOp(t, "resume", "--pipeline", "e2e")
	waitCount(t, e, 2, all...)
	stopAll(t, e, a)
	// Each shard's records arrive again in order, from the first.
	second := map[string][]received{}
	seen := map[string]int{}
	for _, r := range e.sink.snapshot() {
		if seen[r.Key]++; seen[r.Key] == 2 {
			second[shardOf(r.Key)] = append(second[shardOf(r.Key)], r)
		}
	}
	for _, recs := range second {
		checkOrder(t, recs)
	}
}

// TestResetToATimeResumesAtTheFirstRecordCreatedAtOrAfterIt: reset --to T on a paused pipeline
// re-delivers, after resume, exactly the records created at or after T.
func TestResetToATimeResumesAtTheFirstRecordCreatedAtOrAfterIt(t *testing.T) {
	e := newReplicaEnv(t, 2)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	var before, after []string
	for i, sh := range e.shards {
		old, recent := keys(fmt.Sprintf("old%d", i), 4), keys(fmt.Sprintf("new%d", i), 4)
		putKeys(e.st, sh, at.Add(-10*time.Minute), old[:2]...)
		putKeys(e.st, sh, at.Add(-time.Second), old[2:]...)
		putKeys(e.st, sh, at, recent[:2]...) // created exactly at T: delivered again
		putKeys(e.st, sh, at.Add(time.Minute), recent[2:]...)
		before, after = append(before, old...), append(after, recent...)
	}
	a := e.start(t, "a")
	waitCount(t, e, 1, append(before, after...)...)
	e.mustOp(t, "pause", "--pipeline", "e2e")
	waitLogged(t, "pipeline paused", a)
	e.mustOp(t, "reset", "--pipeline", "e2e", "--to", at.Format(time.RFC3339))
	e.mustOp(t, "resume", "--pipeline", "e2e")
	waitCount(t, e, 2, after...)
	stopAll(t, e, a)
	got := byKey(e.sink.snapshot())
	for _, k := range before {
		if got[k] != 1 {
			t.Fatalf("%s (created before the reset's time) arrived %d times, want once (before the reset only)", k, got[k])
		}
	}
}

// TestStatusJSONShowsASplit: after a split, `poller status --json` shows the parent finished with
// its last sequence number and no owner, each child reading, owned by the live worker, with its
// checkpoint and a reported iterator age, as the lease table holds them.
func TestStatusJSONShowsASplit(t *testing.T) {
	e := newReplicaEnv(t, 1)
	parent := e.shards[0]
	pseqs := putKeys(e.st, parent, time.Time{}, keys("p", 3)...)
	a := e.start(t, "a")
	waitCount(t, e, 1, keys("p", 3)...)
	c1, c2 := e.st.Split(parent)
	s1 := putKeys(e.st, c1, time.Time{}, keys("c1", 2)...)
	s2 := putKeys(e.st, c2, time.Time{}, keys("c2", 2)...)
	waitCount(t, e, 1, append(keys("c1", 2), keys("c2", 2)...)...)

	want := map[string]control.ShardStatus{
		parent: {ShardID: parent, State: control.StateFinished, Checkpoint: pseqs[2]},
		c1:     {ShardID: c1, ParentShardID: parent, Owner: "a", State: control.StateReading, Checkpoint: s1[1]},
		c2:     {ShardID: c2, ParentShardID: parent, Owner: "a", State: control.StateReading, Checkpoint: s2[1]},
	}
	var doc control.Document
	waitFor(t, "status to show the split with the children's iterator ages", 30*time.Second, func() bool {
		doc = e.statusDoc(t)
		p := doc.Pipelines[0]
		if len(p.Shards) != 3 {
			return false
		}
		for _, s := range p.Shards {
			w := want[s.ShardID]
			age := s.IteratorAgeSeconds
			s.IteratorAgeSeconds = nil
			if s != w || (s.State == control.StateReading) != (age != nil) {
				return false
			}
		}
		return true
	})
	p := doc.Pipelines[0]
	if p.Name != "e2e" || p.StreamARN != e.st.ARN() || p.Paused || !p.Enabled {
		t.Fatalf("status = %+v, want pipeline e2e of %s, not paused, enabled", p, e.st.ARN())
	}
	if !slices.Equal(p.Workers, []control.WorkerStatus{{ID: "a", Leases: 2}}) {
		t.Fatalf("workers = %+v, want a with 2 leases", p.Workers)
	}
	if p.Shards[0].ShardID != parent {
		t.Fatalf("shards = %+v, want the parent first", p.Shards)
	}
	human := e.mustOp(t, "status")
	for _, s := range []string{"pipeline e2e: running", "a (2 leases)", parent, c1, c2, "finished", "reading"} {
		if !strings.Contains(human, s) {
			t.Fatalf("status table lacks %q:\n%s", s, human)
		}
	}

	// A reset to TRIM_HORIZON reads the finished parent again, and its children only after it.
	e.mustOp(t, "pause", "--pipeline", "e2e")
	waitLogged(t, "pipeline paused", a)
	e.mustOp(t, "reset", "--pipeline", "e2e", "--to", "TRIM_HORIZON")
	if doc := e.statusDoc(t); doc.Pipelines[0].Shards[1].State != control.StateWaiting {
		t.Fatalf("after the reset, status = %+v, want the children waiting for their parent", doc.Pipelines[0].Shards)
	}
	e.mustOp(t, "resume", "--pipeline", "e2e")
	children := append(keys("c1", 2), keys("c2", 2)...)
	waitCount(t, e, 2, append(keys("p", 3), children...)...)
	stopAll(t, e, a)
	seen, lastParent, firstChild := map[string]int{}, -1, -1
	for i, r := range e.sink.snapshot() {
		if seen[r.Key]++; seen[r.Key] != 2 {
			continue
		}
		if strings.HasPrefix(r.Key, "p-") {
			lastParent = i
		} else if firstChild < 0 {
			firstChild = i
		}
	}
	if firstChild < lastParent {
		t.Fatalf("a child's record arrived again (#%d) before the parent's last (#%d)", firstChild, lastParent)
	}
}

// TestAtTimestampSkipsRecordsCreatedBeforeIt: a pipeline's first start at AT_TIMESTAMP T never
// delivers the records created before T (they are counted as skipped), and delivers every record
// created at or after it, in every shard, including the ones written while it runs.
func TestAtTimestampSkipsRecordsCreatedBeforeIt(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	e := &replicaEnv{srv: srv, st: st, shards: st.OpenShards(2), sink: newSink(t)}
	table := fmt.Sprintf("leases-%d", time.Now().UnixNano())
	e.leases = checkpoint.New(dynamo(testenv.DynamoDBLocal(t)), table)
	at := time.Now().Add(-time.Hour).Truncate(time.Second)
	port := freePort(t)
	e.cfg = pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: e.sink.srv.URL, LeaseTable: table,
		LeaseDuration: leaseDuration.String(), RenewInterval: renewInterval.String(), WorkerID: "a", Port: port}
	var before, after []string
	for i, sh := range e.shards {
		old, recent := keys(fmt.Sprintf("old%d", i), 3), keys(fmt.Sprintf("new%d", i), 3)
		putKeys(st, sh, at.Add(-time.Hour), old...)
		putKeys(st, sh, at, recent...)
		before, after = append(before, old...), append(after, recent...)
	}
	cfg := strings.Replace(e.cfg.yaml(t), "      stream_arn: "+st.ARN()+"\n",
		"      stream_arn: "+st.ARN()+"\n      starting_position: AT_TIMESTAMP\n      starting_position_timestamp: "+at.Format(time.RFC3339)+"\n", 1)
	if !strings.Contains(cfg, "AT_TIMESTAMP") {
		t.Fatalf("config without AT_TIMESTAMP:\n%s", cfg)
	}
	a := startPoller(t, cfg)
	waitCount(t, e, 1, after...)
	live := keys("live", 3)
	putKeys(st, e.shards[0], time.Time{}, live...)
	waitCount(t, e, 1, live...)
	if n := metricValue(t, port, "e2e", "poller_records_skipped_total", `reason="before_start"`); n != float64(len(before)) {
		t.Errorf("poller_records_skipped_total{reason=\"before_start\"} = %v, want %d (the records created before the time)", n, len(before))
	}
	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("poller exited %d after SIGTERM, want 0", code)
	}
	e.sink.settle(t)
	got := byKey(e.sink.snapshot())
	for _, k := range before {
		if got[k] != 0 {
			t.Fatalf("%s, created before the AT_TIMESTAMP time, was delivered", k)
		}
	}
	if n := strings.Count(a.log.String(), `"skipped_before_start":3`); n != len(e.shards) {
		t.Fatalf("%d shards logged 3 records skipped before the start, want %d", n, len(e.shards))
	}
}

// TestPauseLastsAcrossARestart: a replica started on a paused pipeline reads nothing at all (not one
// GetRecords call) until resume; then the records written meanwhile arrive.
func TestPauseLastsAcrossARestart(t *testing.T) {
	e := newReplicaEnv(t, 1)
	putKeys(e.st, e.shards[0], time.Time{}, keys("before", 3)...)
	a := e.start(t, "a")
	waitCount(t, e, 1, keys("before", 3)...)
	e.mustOp(t, "pause", "--pipeline", "e2e")
	waitLogged(t, "pipeline paused", a)
	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("poller exited %d after SIGTERM, want 0", code)
	}
	e.sink.settle(t)
	putKeys(e.st, e.shards[0], time.Time{}, keys("paused", 3)...)
	reads := e.srv.Calls("GetRecords")
	a = e.start(t, "a")
	waitLogged(t, "pipeline paused", a)
	// A few rounds of the restarted replica, paused: its lease rounds run, it reads nothing.
	rounds := func() int { return strings.Count(a.log.String(), "lease round") }
	seen := rounds()
	waitFor(t, "three lease rounds of the restarted replica", 30*time.Second, func() bool { return rounds() >= seen+3 })
	if r := e.srv.Calls("GetRecords"); r != reads {
		t.Fatalf("the replica restarted on a paused pipeline made %d GetRecords calls, want none", r-reads)
	}
	if got := byKey(e.sink.snapshot()); got["paused-000000"] != 0 {
		t.Fatalf("a record written while paused arrived before resume")
	}
	e.mustOp(t, "resume", "--pipeline", "e2e")
	waitCount(t, e, 1, keys("paused", 3)...)
	stopAll(t, e, a)
}
