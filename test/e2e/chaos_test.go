package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// Chaos: the running binary while the stream changes and fails under it. The first test lets DynamoDB
// Local roll its shard for real, run under libfaketime at 200x so that its 4-hour rollover comes in
// about 75 s of real time; the second injects faults with the Streams test endpoint. poller's own
// clock stays real, so records from the fast emulator look hours old: no max_record_age here.

// rolloverClock is DynamoDB Local's clock for the rollover test: real time at start, 200x as fast.
// At that speed iterators expire after 4.5 s of real time and records are trimmed after about 7 min.
const rolloverClock = "+0 x200"

func TestChaosDynamoDBLocalRollsItsShardWhilePollerReadsAndEveryRecordArrivesOnceParentFirst(t *testing.T) {
	began := time.Now()
	endpoint := testenv.NewDynamoDBLocal(t, "faketime", "-m", "-f", rolloverClock)
	up := time.Now()
	db := dynamo(endpoint)
	createTable(t, db, "Rollover")
	desc, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("Rollover")})
	if err != nil {
		t.Fatalf("describe table: %v", err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	streams := dynamodbstreams.NewFromConfig(testenv.AWSConfig(), func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })

	s := newSink(t)
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Rollover", SinkURL: s.srv.URL}.yaml(t))
	w := writeSteadily(t, db, "Rollover", 50*time.Millisecond) // 20 records a second

	var parent, child string
	waitFor(t, "DynamoDB Local to close its shard and open a child", 110*time.Second, func() bool {
		parent, child = rolledShard(t, streams, arn)
		return child != ""
	})
	rolled := time.Since(up)
	// A few seconds more of writes, which go to the child.
	atRoll := w.written()
	waitFor(t, "60 more records after the rollover", 30*time.Second, func() bool { return w.written() >= atRoll+60 })
	n := w.stop()
	waitFor(t, fmt.Sprintf("%d records at the sink", n), time.Minute, func() bool { return s.count() >= n })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	s.settle(t)

	// Which shard holds which record: read the stream ourselves, before the emulator trims anything.
	layout := readStream(t, streams, arn)
	recs := s.snapshot()
	counts := byKey(recs)
	for i := range n {
		if c := counts[itemKey(i)]; c != 1 {
			t.Errorf("%s delivered %d times, want once", itemKey(i), c)
		}
	}
	if len(recs) != n {
		t.Errorf("sink got %d records, want %d", len(recs), n)
	}
	shardOf := bySeq(layout)
	perShard := checkShardOrder(t, recs, shardOf)
	if perShard[parent] == 0 || perShard[child] == 0 {
		t.Fatalf("parent %s has %d records delivered and child %s %d: the test needs records on both sides of the rollover",
			parent, perShard[parent], child, perShard[child])
	}
	for _, sh := range layout {
		if sh.parent != "" {
			checkChildAfterParent(t, recs, shardOf, sh.parent, sh.id)
		}
	}
	var lastParent, firstChild time.Time
	for _, r := range recs {
		switch shardOf(r) {
		case parent:
			lastParent = r.At
		case child:
			if firstChild.IsZero() {
				firstChild = r.At
			}
		}
	}
	t.Logf("rollover seen %.1fs after DynamoDB Local listened (%d records written by then); first child record %v after the last parent record; %d records in %d shards %v; whole test %.1fs",
		rolled.Seconds(), atRoll, firstChild.Sub(lastParent).Round(time.Millisecond), n, len(layout), perShard, time.Since(began).Seconds())
}

// The Streams test endpoint serves four shards and splits one while poller reads them, and injects:
// bursts of GetRecords throttling, InternalServerError on GetRecords and on DescribeStream, expired
// iterators in the middle of a shard, a position trimmed away under a lagging reader, and throttled
// lease-table writes (the endpoint passes those to DynamoDB Local, through the same hooks).
func TestChaosStreamsFaultsLoseOnlyTrimmedRecordsAndKeepShardsInOrderParentsFirst(t *testing.T) {
	began := time.Now()
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Chaos", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	faults := &faultPlan{}
	faults.install(srv, streamstest.OpGetRecords, streamstest.OpDescribeStream, streamstest.Op("UpdateItem"))
	cs := &chaosStream{st: st, layout: map[string]*shardLayout{}, shards: map[string]string{}}
	ids := st.OpenShards(4)
	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	cs.put(a, "a", 0, 200)
	cs.put(b, "b", 0, 300)
	cs.put(c, "c", 0, 300)
	cs.put(d, "d", 0, 1500) // two GetRecords pages: the iterator expires between them

	// Armed before poller starts. The rules are tried in order and the first that applies answers, so
	// the shard rules count only the reads that the throttling let through.
	throttled := faults.arm(&fault{op: streamstest.OpGetRecords, left: -1, err: streamstest.Throttle()})
	expired := faults.arm(&fault{op: streamstest.OpGetRecords, shard: d, skip: 1, left: 2, err: streamstest.ExpiredIterator()})
	// The SDK makes up to four attempts of a Streams call: four errors in a row reach poller once.
	readErrors := faults.arm(&fault{op: streamstest.OpGetRecords, shard: c, skip: 1, left: 4, err: streamstest.InternalError()})

	s := newSink(t)
	port := freePort(t)
	leaseTable := fmt.Sprintf("chaos-leases-%d", time.Now().UnixNano()) // the shared DynamoDB Local outlives one run
	p := startPoller(t, pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: s.srv.URL, Port: port,
		LeaseTable: leaseTable}.yaml(t))
	metric := func(name, labels string) float64 { return metricValue(t, port, "e2e", name, labels) }
	waitServing(t, port)

	// A burst of throttling, every read refused until poller has given up on one call (after the
	// SDK's own retries) and counted it.
	burst := time.Now()
	waitFor(t, "poller to count a throttled GetRecords", time.Minute, func() bool {
		return metric("poller_getrecords_total", `result="throttled"`) > 0
	})
	faults.disarm(throttled)
	burstTook := time.Since(burst)
	waitFor(t, "the first records of every shard, through expired iterators and errors", time.Minute, func() bool {
		return cs.deliveredOf(s.snapshot(), a, b, c, d) >= 200+300+300+1500
	})
	waitFor(t, "the expired iterators and read errors to be answered", 30*time.Second, func() bool {
		return faults.hits(expired) == 2 && faults.hits(readErrors) == 4
	})

	// Trimming under a lagging reader: shard a's reads answer empty pages (the reader keeps its
	// position after a-0199) while 200 records arrive and retention drops 300; records a-0200..a-0299
	// are lost before poller could read them, a-0300..a-0399 remain.
	pause := faults.arm(&fault{op: streamstest.OpGetRecords, shard: a, left: -1, err: streamstest.EmptyPage()})
	// One read answered empty means the read before it is over (one GetRecords in flight per shard).
	waitFor(t, "a read of shard a to be held back", 30*time.Second, func() bool { return faults.hits(pause) >= 1 })
	cs.put(a, "a", 200, 200)
	st.Trim(a, 300)
	faults.disarm(pause)
	waitFor(t, "poller to count the trimmed position", 30*time.Second, func() bool {
		return metric("poller_trimmed_positions_total", "") > 0
	})

	// A split while poller runs, while DescribeStream fails (the children lookup at the parent's end
	// and the periodic listing) and reads are throttled again.
	cs.put(b, "b", 300, 200)
	describeErrors := faults.arm(&fault{op: streamstest.OpDescribeStream, left: 8, err: streamstest.InternalError()})
	throttledAgain := faults.arm(&fault{op: streamstest.OpGetRecords, left: 8, err: streamstest.Throttle()})
	left, right := cs.split(b)
	cs.put(left, "left", 0, 200)
	cs.put(right, "right", 0, 200)

	// Throttled lease-table writes: the sink, on receiving the batch that starts at c-0300, has every
	// UpdateItem (checkpoints, renewals, heartbeats) refused, so the batch's checkpoint write fails
	// at poller's level (after the SDK's retries), more than three times in a row (poller used to
	// give up after three, tear the shard down and deliver the batch again from the old checkpoint),
	// and poller's retry in place goes through once the test lifts the refusal; every record is
	// still delivered exactly once (checked at the end). Armed from inside the sink call, after
	// poller's pre-delivery lease check:
	// refusing lease writes earlier could keep the batch from being sent at all (no confirmed lease,
	// no sink call), and then no checkpoint would be written.
	leaseThrottle := &fault{op: "UpdateItem", left: -1, err: &streamstest.APIError{
		Code: "ProvisionedThroughputExceededException", Status: 400, Message: "The level of configured provisioned throughput for the table was exceeded (injected)"}}
	var leaseThrottleArmed atomic.Bool
	s.mu.Lock()
	s.fail = func(ev events.DynamoDBEvent) bool {
		if holds(ev, "c-0300") && !leaseThrottleArmed.Swap(true) {
			faults.arm(leaseThrottle)
		}
		return false
	}
	s.mu.Unlock()
	cs.put(c, "c", 300, 200)
	waitFor(t, "lease writes to be refused", time.Minute, leaseThrottleArmed.Load)
	leaseWindow := time.Now()
	waitFor(t, "a checkpoint write to fail throttled four times in a row, or a shard to be torn down", 2*time.Minute, func() bool {
		log := p.log.String()
		return checkpointRetried(log, 4) || checkpointTornDown(log)
	})
	faults.disarm(leaseThrottle)
	leaseWindowTook := time.Since(leaseWindow)
	if !checkpointRetried(p.log.String(), 4) {
		t.Errorf("a shard was torn down while its checkpoint write was throttled, want the write retried in place")
	}

	lost := keyRange("a", 200, 300)
	want := len(cs.keys) - len(lost)
	waitFor(t, fmt.Sprintf("%d records that were not trimmed away", want), time.Minute, func() bool {
		return len(distinct(s.snapshot())) >= want
	})
	waitFor(t, "the DescribeStream errors and the second throttling burst to be answered", 30*time.Second, func() bool {
		return faults.hits(describeErrors) == 8 && faults.hits(throttledAgain) == 8
	})
	for _, m := range []struct{ name, labels string }{
		{"poller_getrecords_total", `result="throttled"`},
		{"poller_getrecords_total", `result="error"`},
		{"poller_trimmed_positions_total", ""},
		{"poller_checkpoints_total", `result="error"`},
	} {
		if v := metric(m.name, m.labels); v <= 0 {
			t.Errorf("%s{%s} = %v, want > 0", m.name, m.labels, v)
		}
	}
	throttleCount := metric("poller_getrecords_total", `result="throttled"`)
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	s.settle(t)

	recs := s.snapshot()
	counts := byKey(recs)
	for _, k := range cs.keys {
		switch c := counts[k]; {
		case lost[k] && c != 0:
			t.Errorf("%s delivered %d times, but it was trimmed away before poller could read it", k, c)
		case !lost[k] && c != 1:
			t.Errorf("%s delivered %d times, want once", k, c)
		}
	}
	if len(recs) != want {
		t.Errorf("sink got %d records, want %d", len(recs), want)
	}
	perShard := checkShardOrder(t, recs, cs.shardOf)
	checkChildAfterParent(t, recs, cs.shardOf, b, left)
	checkChildAfterParent(t, recs, cs.shardOf, b, right)
	if !trimLogged(p.log.String(), a) {
		t.Errorf("poller did not log the trimmed position of shard %s as data loss", a)
	}
	t.Logf("%d records delivered (%d trimmed away unread) in %d shards %v; first throttling burst %.1fs, %d reads refused, %.0f throttled at poller's level (after the SDK's retries); lease writes refused for %.1fs (%d); whole test %.1fs",
		len(recs), len(lost), len(cs.layout), perShard, burstTook.Seconds(), faults.hits(throttled), throttleCount,
		leaseWindowTook.Seconds(), faults.hits(leaseThrottle), time.Since(began).Seconds())
}

// faultPlan answers the Streams test endpoint's calls by rules the test arms and disarms while poller
// runs: the first armed rule that applies to a call decides it; no rule, no fault.
type faultPlan struct {
	mu    sync.Mutex
	rules []*fault
}

// fault is one rule; its fields are guarded by the plan's mu once armed.
type fault struct {
	op    streamstest.Op
	shard string // "" applies to every call of op
	skip  int    // calls let through (to the rules after this one) before the first answer
	left  int    // answers left; -1 answers until disarmed
	err   error
	hit   int // answers given
}

func (f *faultPlan) install(srv *streamstest.Server, ops ...streamstest.Op) {
	for _, op := range ops {
		srv.Fault(op, f.hook)
	}
}

func (f *faultPlan) arm(r *fault) *fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, r)
	return r
}

func (f *faultPlan) disarm(r *fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.left = 0
}

func (f *faultPlan) hits(r *fault) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return r.hit
}

func (f *faultPlan) hook(req streamstest.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.op != req.Op || (r.shard != "" && r.shard != req.ShardID) || r.left == 0 {
			continue
		}
		if r.skip > 0 {
			r.skip--
			continue
		}
		if r.left > 0 {
			r.left--
		}
		r.hit++
		return r.err
	}
	return nil
}

// shardLayout is one shard as the test knows it: its parent and its records' sequence numbers in
// shard order.
type shardLayout struct {
	id, parent string
	seqs       []string
}

// chaosStream puts records into a Streams test endpoint stream and remembers where each one went.
// Only the test goroutine uses it.
type chaosStream struct {
	st     *streamstest.Stream
	layout map[string]*shardLayout
	keys   []string          // every key put, in order
	shards map[string]string // key -> shard (the endpoint's sequence numbers repeat across shards)
}

// put writes records <prefix>-<from>..<prefix>-<from+n-1> to shard.
func (cs *chaosStream) put(shard, prefix string, from, n int) {
	recs := make([]streamstest.Record, n)
	for i := range n {
		k := fmt.Sprintf("%s-%04d", prefix, from+i)
		item := streamstest.Item{"pk": streamstest.S(k)}
		recs[i] = streamstest.Insert(item, item)
		cs.keys = append(cs.keys, k)
		cs.shards[k] = shard
	}
	seqs := cs.st.Put(shard, recs...)
	sh := cs.shard(shard, "")
	sh.seqs = append(sh.seqs, seqs...)
}

func (cs *chaosStream) split(parent string) (string, string) {
	left, right := cs.st.Split(parent)
	cs.shard(left, parent)
	cs.shard(right, parent)
	return left, right
}

func (cs *chaosStream) shard(id, parent string) *shardLayout {
	if cs.layout[id] == nil {
		cs.layout[id] = &shardLayout{id: id, parent: parent}
	}
	return cs.layout[id]
}

// shardOf finds a delivered record's shard by its key.
func (cs *chaosStream) shardOf(r received) string { return cs.shards[r.Key] }

// deliveredOf counts the delivered records that belong to the shards.
func (cs *chaosStream) deliveredOf(recs []received, shards ...string) int {
	of := map[string]bool{}
	for _, id := range shards {
		of[id] = true
	}
	n := 0
	for _, r := range recs {
		if of[cs.shardOf(r)] {
			n++
		}
	}
	return n
}

// keyRange is the set of keys <prefix>-<from>..<prefix>-<to-1>, as the sink records them.
func keyRange(prefix string, from, to int) map[string]bool {
	m := map[string]bool{}
	for i := from; i < to; i++ {
		m[fmt.Sprintf("%s-%04d", prefix, i)] = true
	}
	return m
}

// shardOfFunc tells which shard a delivered record came from ("" for none).
type shardOfFunc func(r received) string

// bySeq finds a record's shard by its sequence number, for a stream whose sequence numbers are
// unique across shards (DynamoDB Local's).
func bySeq(layout map[string]*shardLayout) shardOfFunc {
	m := map[string]string{}
	for _, sh := range layout {
		for _, seq := range sh.seqs {
			m[seq] = sh.id
		}
	}
	return func(r received) string { return m[r.Seq] }
}

// checkShardOrder fails unless every delivered record belongs to a shard and each shard's records
// arrived in sequence-number order. It returns the records delivered per shard.
func checkShardOrder(t *testing.T, recs []received, shardOf shardOfFunc) map[string]int {
	t.Helper()
	byShard := map[string][]received{}
	for _, r := range recs {
		id := shardOf(r)
		if id == "" {
			t.Errorf("delivered record %s (sequence number %s) is in no shard of the stream", r.Key, r.Seq)
			continue
		}
		byShard[id] = append(byShard[id], r)
	}
	counts := map[string]int{}
	for id, rs := range byShard {
		t.Run("order of "+id, func(t *testing.T) { checkOrder(t, rs) })
		counts[id] = len(rs)
	}
	return counts
}

// checkChildAfterParent fails unless every record of child arrived after the last record of parent.
func checkChildAfterParent(t *testing.T, recs []received, shardOf shardOfFunc, parent, child string) {
	t.Helper()
	lastParent, firstChild := -1, -1
	for i, r := range recs {
		switch shardOf(r) {
		case parent:
			lastParent = i
		case child:
			if firstChild < 0 {
				firstChild = i
			}
		}
	}
	if firstChild >= 0 && firstChild < lastParent {
		t.Errorf("a record of child %s arrived at %d, before the last record of parent %s (%d)", child, firstChild, parent, lastParent)
	}
}

// trimLogged reports a warning in poller's JSON log about a trimmed position of shard.
// checkpointRetried reports whether the log shows a checkpoint write that failed attempts times in a
// row and is retried in place.
func checkpointRetried(log string, attempts int) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "checkpoint write failed; retrying") && strings.Contains(line, fmt.Sprintf(`"attempt":%d,`, attempts)) {
			return true
		}
	}
	return false
}

// checkpointTornDown reports whether the log shows a shard worker stopped by a failed checkpoint
// write (what poller did after three failed attempts). A worker stopped for another reason (say, a
// throttled write marking a split shard finished, which repeats nothing) does not count.
func checkpointTornDown(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "shard worker stopped") && strings.Contains(line, `"error":"checkpoint `) {
			return true
		}
	}
	return false
}

func trimLogged(log, shard string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "position trimmed") && strings.Contains(line, `"shard_id":"`+shard+`"`) {
			return true
		}
	}
	return false
}

// steadyWriter puts one item (item-000000, item-000001, ...) each interval until stopped.
type steadyWriter struct {
	n    atomic.Int64
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func writeSteadily(t *testing.T, db *dynamodb.Client, table string, interval time.Duration) *steadyWriter {
	w := &steadyWriter{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
				"pk": &ddbtypes.AttributeValueMemberS{Value: itemKey(i)},
			}})
			cancel()
			if err != nil {
				t.Errorf("put %s: %v", itemKey(i), err)
				return
			}
			w.n.Add(1)
			select {
			case <-tick.C:
			case <-w.quit:
				return
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *steadyWriter) written() int { return int(w.n.Load()) }

// stop ends the writes and returns how many items were written.
func (w *steadyWriter) stop() int {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	return w.written()
}

// describeAll lists every shard of the stream, page by page.
func describeAll(t *testing.T, streams *dynamodbstreams.Client, arn string) []types.Shard {
	t.Helper()
	var out []types.Shard
	var start *string
	for page := 0; ; page++ {
		if page == 100 {
			t.Fatalf("describe stream %s: more than 100 pages", arn)
		}
		res, err := streams.DescribeStream(t.Context(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
		if err != nil {
			t.Fatalf("describe stream %s: %v", arn, err)
		}
		out = append(out, res.StreamDescription.Shards...)
		next := res.StreamDescription.LastEvaluatedShardId
		if next == nil || (start != nil && *next == *start) {
			return out
		}
		start = next
	}
}

// rolledShard returns a closed shard and its child, or two empty strings while there is none.
func rolledShard(t *testing.T, streams *dynamodbstreams.Client, arn string) (parent, child string) {
	t.Helper()
	shards := describeAll(t, streams, arn)
	closed := map[string]bool{}
	for _, sh := range shards {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			closed[aws.ToString(sh.ShardId)] = true
		}
	}
	for _, sh := range shards {
		if p := aws.ToString(sh.ParentShardId); closed[p] {
			return p, aws.ToString(sh.ShardId)
		}
	}
	return "", ""
}

// readStream reads every shard of the stream from TRIM_HORIZON to its end (closed) or to its first
// empty page (open; nothing is written any more).
func readStream(t *testing.T, streams *dynamodbstreams.Client, arn string) map[string]*shardLayout {
	t.Helper()
	ctx := t.Context()
	layout := map[string]*shardLayout{}
	for _, sh := range describeAll(t, streams, arn) {
		id := aws.ToString(sh.ShardId)
		l := &shardLayout{id: id, parent: aws.ToString(sh.ParentShardId)}
		layout[id] = l
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(id),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("get shard iterator for %s: %v", id, err)
		}
		iter := it.ShardIterator
		for page := 0; iter != nil; page++ {
			if page == 1000 {
				t.Fatalf("shard %s: more than 1000 pages", id)
			}
			res, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("get records from %s: %v", id, err)
			}
			for _, r := range res.Records {
				l.seqs = append(l.seqs, aws.ToString(r.Dynamodb.SequenceNumber))
			}
			if len(res.Records) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return layout
}
