package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/onfailure"
)

// failureRun is one failure scenario while it runs: its table, sink, poller and on_failure file.
type failureRun struct {
	endpoint, table string
	sink            *sink
	proc            *proc
	port            int
	reportsPath     string
	wroteNext       bool   // a scenario's extra record is written
	lastSeq         string // the stream's last sequence number, once read
}

// reports reads the on_failure file's records (Lambda's on-failure invocation records).
func (r *failureRun) reports(t *testing.T) []onfailure.Record {
	t.Helper()
	f, err := os.Open(r.reportsPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []onfailure.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var rec onfailure.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("on_failure line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// reportedCount is the number of records the on_failure file reports.
func (r *failureRun) reportedCount(t *testing.T) int {
	n := 0
	for _, rec := range r.reports(t) {
		n += rec.DDBStreamBatchInfo.BatchSize
	}
	return n
}

// metric scrapes the poller's /metrics for one series of the pipeline, e.g.
// metric(t, "poller_records_dropped_total", `reason="max_age"`); 0 when absent.
func (r *failureRun) metric(t *testing.T, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.port))
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `pipeline="`+r.table+`"`) || !strings.Contains(line, labels) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// checkpoint is the shard's checkpoint in the lease table ("" before the first).
func (r *failureRun) checkpoint(t *testing.T) string {
	leases, _, err := checkpoint.New(dynamo(r.endpoint), "poller-leases").List(context.Background(), r.table)
	if err != nil || len(leases) != 1 {
		return ""
	}
	return leases[0].Checkpoint
}

// itemKey is the key the harness writes for item i.
func itemKey(i int) string { return fmt.Sprintf("item-%06d", i) }

// holds reports whether the event holds the item with key.
func holds(ev events.DynamoDBEvent, key string) bool {
	for _, r := range ev.Records {
		if keyOf(r) == key {
			return true
		}
	}
	return false
}

// seqOfKey returns the sequence number of the item with key in the event, "" if absent.
func seqOfKey(ev events.DynamoDBEvent, key string) string {
	for _, r := range ev.Records {
		if keyOf(r) == key {
			return r.Change.SequenceNumber
		}
	}
	return ""
}

// keysIn returns the keys of a call's records.
func keysIn(call []received) []string {
	out := make([]string, len(call))
	for i, r := range call {
		out[i] = r.Key
	}
	return out
}

// waitForDynamoDBSecond waits until the clock of a DynamoDB Local that runs offset behind is within
// the first within seconds of a minute, so that a record written then is rounded down (DynamoDB
// Local rounds ApproximateCreationDateTime to the minute) by less than that.
func waitForDynamoDBSecond(t *testing.T, offset time.Duration, within int) {
	clock := time.Now().Add(-offset)
	if clock.Second() < within {
		return
	}
	wait := clock.Truncate(time.Minute).Add(time.Minute).Sub(clock) + 200*time.Millisecond
	t.Logf("waiting %s for DynamoDB Local's clock to start a minute", wait.Round(time.Second))
	time.Sleep(wait)
}

func TestFailureSemantics(t *testing.T) {
	const poison = 42
	tests := []struct {
		name string
		// ddb runs a fresh DynamoDB Local under this wrapper (faketime); nil uses the shared one.
		ddb []string
		// keys are pipeline keys (4-space indent); an on_failure file destination is added.
		keys string
		// n items are written before the poller starts, unless writeLater.
		n          int
		writeLater func(t *testing.T)
		sink       func(s *sink)
		until      func(t *testing.T, r *failureRun) bool
		check      func(t *testing.T, r *failureRun)
	}{
		{
			name: "a poison record among 100 with bisect and max_retry_attempts 2 ends in on_failure alone while the other 99 are delivered once each",
			keys: "    bisect_batch_on_error: true\n    max_retry_attempts: 2\n",
			n:    100,
			sink: func(s *sink) { s.fail = func(ev events.DynamoDBEvent) bool { return holds(ev, itemKey(poison)) } },
			until: func(t *testing.T, r *failureRun) bool {
				return r.sink.count() >= 99 && len(r.reports(t)) >= 1
			},
			check: func(t *testing.T, r *failureRun) {
				reps := r.reports(t)
				if len(reps) != 1 {
					t.Fatalf("on_failure got %d reports, want 1", len(reps))
				}
				rep := reps[0]
				poisonSeq := ""
				failedCalls := 0
				for _, call := range r.sink.triedCalls() {
					for _, rec := range call {
						if rec.Key == itemKey(poison) {
							poisonSeq = rec.Seq
							failedCalls++
						}
					}
				}
				bi := rep.DDBStreamBatchInfo
				if bi.BatchSize != 1 || bi.StartSequenceNumber != poisonSeq || bi.EndSequenceNumber != poisonSeq {
					t.Errorf("report covers %s..%s (%d records), want only the poison record %s", bi.StartSequenceNumber, bi.EndSequenceNumber, bi.BatchSize, poisonSeq)
				}
				if rep.RequestContext.Condition != onfailure.RetryAttemptsExhausted || rep.RequestContext.ApproximateInvokeCount != failedCalls {
					t.Errorf("report condition %s, approximateInvokeCount %d; want RetryAttemptsExhausted, %d (the calls that carried it)",
						rep.RequestContext.Condition, rep.RequestContext.ApproximateInvokeCount, failedCalls)
				}
				if rep.ResponseContext.StatusCode != 500 || rep.ResponseContext.FunctionError != "Unhandled" {
					t.Errorf("responseContext = %+v, want status 500 and functionError Unhandled", rep.ResponseContext)
				}
				if rep.Payload == "" || !strings.Contains(rep.Payload, itemKey(poison)) {
					t.Errorf("the file destination's report carries no payload with the poison record")
				}
				counts := byKey(r.sink.snapshot())
				for i := range 100 {
					if want := map[bool]int{true: 0, false: 1}[i == poison]; counts[itemKey(i)] != want {
						t.Errorf("%s delivered %d times, want %d", itemKey(i), counts[itemKey(i)], want)
					}
				}
				checkOrder(t, r.sink.snapshot())
				// About log2(100): per halving one failing and one good half, then 2 retries.
				if calls := len(r.sink.triedCalls()); calls > 2*7+1+2 {
					t.Errorf("%d sink calls to isolate one record in 100, want at most 17", calls)
				}
				if got := r.metric(t, "poller_batch_bisects_total", ""); got != 7 {
					t.Errorf("poller_batch_bisects_total = %v, want 7", got)
				}
				if got := r.metric(t, "poller_records_dropped_total", `reason="retries_exhausted"`); got != 1 {
					t.Errorf("poller_records_dropped_total{retries_exhausted} = %v, want 1", got)
				}
				if got := r.metric(t, "poller_sink_invocations_total", `result="error"`); int(got) != failedCalls {
					t.Errorf("poller_sink_invocations_total{error} = %v, want %d", got, failedCalls)
				}
			},
		},
		{
			name: "without bisect the whole batch goes to on_failure after 3 calls and the shard moves on",
			keys: "    max_retry_attempts: 2\n",
			n:    100,
			sink: func(s *sink) { s.fail = func(ev events.DynamoDBEvent) bool { return holds(ev, itemKey(poison)) } },
			until: func(t *testing.T, r *failureRun) bool {
				if !r.wroteNext && len(r.reports(t)) == 1 {
					writeItems(t, dynamo(r.endpoint), r.table, 100, 1, 10) // the next record, after the discarded batch
					r.wroteNext = true
				}
				return r.sink.count() >= 1
			},
			check: func(t *testing.T, r *failureRun) {
				tried := r.sink.triedCalls()
				if len(tried) != 4 {
					t.Fatalf("%d sink calls, want 3 for the batch and 1 for the next record", len(tried))
				}
				for i, call := range tried[:3] {
					if len(call) != 100 {
						t.Errorf("call %d held %d records, want the whole batch of 100", i+1, len(call))
					}
				}
				reps := r.reports(t)
				if len(reps) != 1 {
					t.Fatalf("on_failure got %d reports, want 1", len(reps))
				}
				bi, rc := reps[0].DDBStreamBatchInfo, reps[0].RequestContext
				if bi.BatchSize != 100 || bi.StartSequenceNumber != tried[0][0].Seq || bi.EndSequenceNumber != tried[0][99].Seq {
					t.Errorf("report covers %s..%s (%d), want the batch %s..%s (100)", bi.StartSequenceNumber, bi.EndSequenceNumber, bi.BatchSize, tried[0][0].Seq, tried[0][99].Seq)
				}
				if rc.Condition != onfailure.RetryAttemptsExhausted || rc.ApproximateInvokeCount != 3 {
					t.Errorf("condition %s, approximateInvokeCount %d; want RetryAttemptsExhausted, 3", rc.Condition, rc.ApproximateInvokeCount)
				}
				if got := keysIn(tried[3]); len(got) != 1 || got[0] != itemKey(100) {
					t.Errorf("after the discarded batch the sink got %v, want [%s]", got, itemKey(100))
				}
				if got := r.metric(t, "poller_records_dropped_total", `reason="retries_exhausted"`); got != 100 {
					t.Errorf("poller_records_dropped_total{retries_exhausted} = %v, want 100", got)
				}
			},
		},
		{
			name: "records older than max_record_age are discarded with RecordAgeExceeded and never sent",
			ddb:  []string{"faketime", "-f", "-10m"}, // every record is ten minutes old when written
			keys: "    max_record_age: 5m\n",
			n:    30,
			until: func(t *testing.T, r *failureRun) bool {
				if r.lastSeq == "" {
					r.lastSeq = lastSequenceNumber(t, r.endpoint, r.table)
				}
				return r.reportedCount(t) >= 30 && r.checkpoint(t) == r.lastSeq
			},
			check: func(t *testing.T, r *failureRun) {
				if calls := len(r.sink.triedCalls()); calls != 0 {
					t.Errorf("the sink got %d calls, want none: every record was too old", calls)
				}
				for _, rep := range r.reports(t) {
					rc := rep.RequestContext
					if rc.Condition != onfailure.RecordAgeExceeded || rc.ApproximateInvokeCount != 0 || rep.ResponseContext.FunctionError != "" {
						t.Errorf("report condition %s, approximateInvokeCount %d, functionError %q; want RecordAgeExceeded, 0, none",
							rc.Condition, rc.ApproximateInvokeCount, rep.ResponseContext.FunctionError)
					}
					arrived, err := time.Parse(time.RFC3339, rep.DDBStreamBatchInfo.ApproximateArrivalOfLastRecord)
					if err != nil || time.Since(arrived) < 5*time.Minute {
						t.Errorf("approximateArrivalOfLastRecord %s: not older than max_record_age (%v)", rep.DDBStreamBatchInfo.ApproximateArrivalOfLastRecord, err)
					}
				}
				if n := r.reportedCount(t); n != 30 {
					t.Errorf("on_failure reports cover %d records, want 30", n)
				}
				if got := r.metric(t, "poller_records_dropped_total", `reason="max_age"`); got != 30 {
					t.Errorf("poller_records_dropped_total{max_age} = %v, want 30", got)
				}
			},
		},
		{
			name: "max_retry_attempts -1 keeps retrying a failing record until it is older than max_record_age",
			// DynamoDB Local's clock runs 45 s behind and rounds creation times down to the minute:
			// written in its first 8 seconds of a minute, a record is 45-53 s old, so it is retried
			// for 7-15 s before it passes max_record_age (60 s).
			ddb:  []string{"faketime", "-f", "-45s"},
			keys: "    max_retry_attempts: -1\n    max_record_age: 60s\n",
			writeLater: func(t *testing.T) {
				waitForDynamoDBSecond(t, 45*time.Second, 8)
			},
			sink: func(s *sink) { s.fail = func(events.DynamoDBEvent) bool { return true } },
			until: func(t *testing.T, r *failureRun) bool {
				return len(r.reports(t)) >= 1
			},
			check: func(t *testing.T, r *failureRun) {
				tried := r.sink.triedCalls()
				reps := r.reports(t)
				if len(reps) != 1 {
					t.Fatalf("on_failure got %d reports, want 1", len(reps))
				}
				rc := reps[0].RequestContext
				if rc.Condition != onfailure.RecordAgeExceeded || rc.ApproximateInvokeCount != len(tried) {
					t.Errorf("condition %s, approximateInvokeCount %d; want RecordAgeExceeded, %d (every call failed)", rc.Condition, rc.ApproximateInvokeCount, len(tried))
				}
				if len(tried) < 4 {
					t.Errorf("the record was sent %d times, want retries (at least 4) until it expired", len(tried))
				}
				reported, err1 := time.Parse("2006-01-02T15:04:05.000Z", reps[0].Timestamp)
				arrived, err2 := time.Parse(time.RFC3339, reps[0].DDBStreamBatchInfo.ApproximateArrivalOfFirstRecord)
				if err1 != nil || err2 != nil || reported.Sub(arrived) <= time.Minute {
					t.Errorf("reported at %s for a record of %s: want it discarded only once older than 60s (%v, %v)",
						reps[0].Timestamp, reps[0].DDBStreamBatchInfo.ApproximateArrivalOfFirstRecord, err1, err2)
				}
			},
		},
		{
			name: "a partial batch response re-delivers from the reported item and never re-delivers records before it",
			keys: "    report_batch_item_failures: true\n",
			n:    100,
			sink: func(s *sink) {
				s.answer = func(ev events.DynamoDBEvent) (int, string) {
					if len(ev.Records) == 0 || keyOf(ev.Records[0]) != itemKey(0) {
						return 0, ""
					}
					// The first call: items 70 and 40 failed; the lowest, 40, is where it resumes.
					return 200, fmt.Sprintf(`{"batchItemFailures": [{"itemIdentifier": %q}, {"itemIdentifier": %q}]}`,
						seqOfKey(ev, itemKey(70)), seqOfKey(ev, itemKey(40)))
				}
			},
			until: func(t *testing.T, r *failureRun) bool { return r.sink.count() >= 60 },
			check: func(t *testing.T, r *failureRun) {
				tried := r.sink.triedCalls()
				if len(tried) != 2 {
					t.Fatalf("%d sink calls, want 2 (the batch, then the batch from the reported item)", len(tried))
				}
				if len(tried[0]) != 100 {
					t.Errorf("first call held %d records, want 100", len(tried[0]))
				}
				second := keysIn(tried[1])
				if len(second) != 60 || second[0] != itemKey(40) || second[59] != itemKey(99) {
					t.Errorf("second call held %v..., want %s..%s", second[:min(3, len(second))], itemKey(40), itemKey(99))
				}
				if len(r.reports(t)) != 0 {
					t.Errorf("on_failure got reports, want none")
				}
				if got := r.metric(t, "poller_sink_invocations_total", `result="partial"`); got != 1 {
					t.Errorf("poller_sink_invocations_total{partial} = %v, want 1", got)
				}
			},
		},
		{
			name: "a partial batch response naming a record not in the batch fails the whole batch",
			keys: "    report_batch_item_failures: true\n",
			n:    10,
			sink: func(s *sink) {
				var answered atomic.Bool
				s.answer = func(events.DynamoDBEvent) (int, string) {
					if answered.Swap(true) {
						return 0, ""
					}
					return 200, `{"batchItemFailures": [{"itemIdentifier": "1"}]}`
				}
			},
			until: func(t *testing.T, r *failureRun) bool { return r.sink.count() >= 10 },
			check: func(t *testing.T, r *failureRun) {
				tried := r.sink.triedCalls()
				if len(tried) != 2 || len(tried[0]) != 10 || len(tried[1]) != 10 {
					t.Errorf("calls held %v records, want the whole batch of 10 twice", lens(tried))
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &failureRun{table: fmt.Sprintf("Failure%d", i), sink: newSink(t), port: freePort(t),
				reportsPath: filepath.Join(t.TempDir(), "failed.jsonl")}
			if tt.ddb != nil {
				r.endpoint = testenv.NewDynamoDBLocal(t, tt.ddb...)
			} else {
				r.endpoint = testenv.DynamoDBLocal(t)
			}
			db := dynamo(r.endpoint)
			createTable(t, db, r.table)
			if tt.sink != nil {
				tt.sink(r.sink)
			}
			if tt.writeLater == nil {
				writeItems(t, db, r.table, 0, tt.n, 10)
			}
			cfg := pipelineConfig{Endpoint: r.endpoint, Table: r.table, SinkURL: r.sink.srv.URL, Port: r.port,
				Extra: tt.keys + "    on_failure:\n      type: file\n      path: " + r.reportsPath + "\n"}.yaml(t)
			cfg = strings.Replace(cfg, "name: e2e", "name: "+r.table, 1)
			r.proc = startPoller(t, cfg)
			if tt.writeLater != nil {
				tt.writeLater(t)
				writeItems(t, db, r.table, 0, 1, 10)
			}
			waitFor(t, "the scenario's outcome", 2*time.Minute, func() bool { return tt.until(t, r) })
			time.Sleep(500 * time.Millisecond) // let a wrong extra call or report show before judging
			tt.check(t, r)
			if code := r.proc.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("poller exited with %d after SIGTERM, want 0", code)
			}
		})
	}
}

func lens(calls [][]received) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = len(c)
	}
	return out
}

// A batch of 10,000 records of 1 KB is about 12 MB of event JSON: it reaches the http sink in
// events no larger than Lambda's 6 MB payload limit, every record once and in order.
func TestTenThousandRecordsOf1KBArriveInEventsOfAtMost6MB(t *testing.T) {
	const n, limit = 10_000, 6 * 1024 * 1024
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Big")
	writeItems(t, db, "Big", 0, n, 1024)

	s := newSink(t)
	// The window lets every record of the shard gather into one 10,000-record batch, which the
	// payload limit then cuts.
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Big", SinkURL: s.srv.URL, BatchSize: n,
		Extra: "    max_batching_window: 20s\n"}.yaml(t))
	waitFor(t, fmt.Sprintf("%d records at the sink", n), 3*time.Minute, func() bool { return s.count() >= n })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	tried := s.triedCalls()
	if s.maxEvent > limit {
		t.Errorf("largest event is %d bytes, over the %d byte limit", s.maxEvent, limit)
	}
	if s.maxEvent < limit*9/10 {
		t.Errorf("largest event is %d bytes: batches were not filled up to the limit (calls: %v)", s.maxEvent, lens(tried))
	}
	recs := s.snapshot()
	if len(recs) != n {
		t.Fatalf("sink got %d records, want %d", len(recs), n)
	}
	counts := byKey(recs)
	for i := range n {
		if counts[itemKey(i)] != 1 {
			t.Fatalf("%s delivered %d times, want once", itemKey(i), counts[itemKey(i)])
		}
	}
	checkOrder(t, recs)
	t.Logf("%d records in %d events (records per event %v), largest %d bytes", n, len(tried), lens(tried), s.maxEvent)
}
