package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/onfailure"
)

// The lambda sink's scenarios run the poller binary against DynamoDB Local and a real Go function
// (internal/testenv/lambdafn, built with aws-lambda-go's lambda.Start) under the AWS Lambda Runtime
// Interface Emulator, with the same assertions as the http sink's failure tests: every record
// delivered once, a poison record alone in on_failure, order per shard.
//
// The emulator runs one invocation at a time and crashes on a second one arriving meanwhile (see
// testenv.LambdaFunction), so each scenario reads one table (DynamoDB Local gives its stream one
// shard) with parallelization_factor 1, and the sink's timeout is above the function's.

// invocation is one line of the function's log: an invocation and what it answered.
type invocation struct {
	Keys   []string `json:"keys"`
	Seqs   []string `json:"seqs"`
	Result string   `json:"result"`
}

// invocations reads the function's log.
func invocations(t *testing.T, path string) []invocation {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []invocation
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var inv invocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			t.Fatalf("function log line %q: %v", sc.Text(), err)
		}
		out = append(out, inv)
	}
	return out
}

// accepted returns the records of the invocations that succeeded, in order, as the http sink's
// tests record them (received.Seq and Key).
func accepted(invs []invocation) []received {
	var out []received
	for i, inv := range invs {
		if inv.Result != "ok" {
			continue
		}
		for j := range inv.Keys {
			out = append(out, received{Seq: inv.Seqs[j], Key: inv.Keys[j], Batch: i + 1})
		}
	}
	return out
}

// lambdaScenario is one run: the table, the function's log, the on_failure file, the poller.
type lambdaScenario struct {
	run  *failureRun
	invs func() []invocation
}

// startLambdaScenario writes n items (read in batches of batchSize), starts the function with env and the poller with the
// pipeline keys extra and a lambda sink pointing at the emulator.
func startLambdaScenario(t *testing.T, n, batchSize int, fnTimeout time.Duration, extra string, env ...string) *lambdaScenario {
	t.Helper()
	fnLog := filepath.Join(t.TempDir(), "invocations.jsonl")
	endpoint := testenv.LambdaFunction(t, testenv.BuildGo(t, "github.com/poller-dev/poller/internal/testenv/lambdafn"), fnTimeout, append([]string{"FN_LOG=" + fnLog}, env...)...)
	r := &failureRun{table: unique("Lambda"), port: freePort(t), reportsPath: filepath.Join(t.TempDir(), "failed.jsonl")}
	r.endpoint = testenv.DynamoDBLocal(t)
	db := dynamo(r.endpoint)
	createTable(t, db, r.table)
	writeItems(t, db, r.table, 0, n, 10)
	cfg := pipelineConfig{Endpoint: r.endpoint, Table: r.table, SinkURL: "LAMBDA", Port: r.port, BatchSize: batchSize, LeaseTable: unique("leases"),
		Extra: extra + "    on_failure:\n      type: file\n      path: " + r.reportsPath + "\n"}.yaml(t)
	cfg = strings.Replace(cfg, "name: e2e", "name: "+r.table, 1)
	sinkKeys := fmt.Sprintf("      type: lambda\n      function_name: %s\n      endpoint_url: %s\n      region: eu-west-1\n      timeout: %s\n",
		testenv.LambdaFunctionName, endpoint, fnTimeout+10*time.Second)
	cfg = strings.Replace(cfg, "      type: http\n      url: LAMBDA\n", sinkKeys, 1)
	r.proc = startPoller(t, cfg)
	return &lambdaScenario{run: r, invs: func() []invocation { return invocations(t, fnLog) }}
}

// stop stops the poller and checks it exited cleanly.
func (s *lambdaScenario) stop(t *testing.T) {
	t.Helper()
	if code := s.run.proc.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
}

// waitMetric waits until the poller's series (name, labels) of the scenario's pipeline is want: the
// function logs an invocation before it answers, so the poller counts it a moment later.
func (s *lambdaScenario) waitMetric(t *testing.T, name, labels string, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s{%s} = %d", name, labels, want), 30*time.Second, func() bool {
		return int(s.run.metric(t, name, labels)) == want
	})
}

// checkOnce fails unless every item 0..n-1 but skip was accepted exactly once, and skip never.
func checkOnce(t *testing.T, invs []invocation, n, skip int) {
	t.Helper()
	counts := byKey(accepted(invs))
	for i := range n {
		want := 1
		if i == skip {
			want = 0
		}
		if counts[itemKey(i)] != want {
			t.Errorf("%s accepted by the function %d times, want %d", itemKey(i), counts[itemKey(i)], want)
		}
	}
	checkOrder(t, accepted(invs))
}

func TestLambdaSinkDeliversEveryRecordOnceInOrder(t *testing.T) {
	const n = 150
	s := startLambdaScenario(t, n, 40, 30*time.Second, "")
	waitFor(t, "every record at the function", 2*time.Minute, func() bool { return len(accepted(s.invs())) >= n })
	invs := s.invs()
	s.waitMetric(t, "poller_sink_invocations_total", `result="ok"`, len(invs))
	s.stop(t)
	checkOnce(t, invs, n, -1)
	for i, inv := range invs {
		if inv.Result != "ok" || len(inv.Keys) > 40 {
			t.Errorf("invocation %d: %s with %d records, want ok with at most batch_size (40)", i+1, inv.Result, len(inv.Keys))
		}
	}
	if reps := s.run.reports(t); len(reps) != 0 {
		t.Errorf("on_failure got %d reports, want none", len(reps))
	}
}

// A poison record fails its invocation, as an error the function returns or as a function that
// runs past its timeout: bisect isolates it, it ends in on_failure alone, and every other record
// reaches the function once, in order.
func TestLambdaSinkPoisonRecordEndsAloneInOnFailure(t *testing.T) {
	const n, poison = 60, 42
	tests := []struct {
		name, mode string
		fnTimeout  time.Duration
		retries    int
		result     string
	}{
		{name: "the function returns an error", mode: "error", fnTimeout: 30 * time.Second, retries: 2, result: "error"},
		{name: "the function times out", mode: "sleep", fnTimeout: time.Second, retries: 0, result: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startLambdaScenario(t, n, 100, tt.fnTimeout,
				fmt.Sprintf("    bisect_batch_on_error: true\n    max_retry_attempts: %d\n", tt.retries),
				"FN_MODE="+tt.mode, "FN_POISON="+itemKey(poison))
			waitFor(t, "the poison record in on_failure and the rest at the function", 3*time.Minute, func() bool {
				return len(accepted(s.invs())) >= n-1 && len(s.run.reports(t)) >= 1
			})
			s.waitMetric(t, "poller_records_dropped_total", `reason="retries_exhausted"`, 1)
			s.stop(t)
			invs := s.invs()
			checkOnce(t, invs, n, poison)
			poisonSeq, poisonCalls := "", 0
			for _, inv := range invs {
				for j, k := range inv.Keys {
					if k == itemKey(poison) {
						poisonSeq = inv.Seqs[j]
						poisonCalls++
						if inv.Result != tt.result {
							t.Errorf("an invocation with the poison record ended %q, want %q", inv.Result, tt.result)
						}
					}
				}
			}
			reps := s.run.reports(t)
			if len(reps) != 1 {
				t.Fatalf("on_failure got %d reports, want 1", len(reps))
			}
			bi, rc := reps[0].DDBStreamBatchInfo, reps[0].RequestContext
			if bi.BatchSize != 1 || bi.StartSequenceNumber != poisonSeq || bi.EndSequenceNumber != poisonSeq {
				t.Errorf("report covers %s..%s (%d records), want only the poison record %s", bi.StartSequenceNumber, bi.EndSequenceNumber, bi.BatchSize, poisonSeq)
			}
			if rc.Condition != onfailure.RetryAttemptsExhausted || rc.ApproximateInvokeCount != poisonCalls {
				t.Errorf("report condition %s, approximateInvokeCount %d; want RetryAttemptsExhausted, %d", rc.Condition, rc.ApproximateInvokeCount, poisonCalls)
			}
			if reps[0].ResponseContext.FunctionError != "Unhandled" {
				t.Errorf("responseContext = %+v, want functionError Unhandled", reps[0].ResponseContext)
			}
		})
	}
}

// The function's answer is read as the partial batch response: the invocation resumes from the
// lowest reported record, and records before it are never invoked again.
func TestLambdaSinkPartialBatchResponse(t *testing.T) {
	const n = 100
	s := startLambdaScenario(t, n, 100, 30*time.Second, "    report_batch_item_failures: true\n",
		"FN_MODE=partial", "FN_PARTIAL_FIRST="+itemKey(0), "FN_PARTIAL_FAILED="+itemKey(70)+","+itemKey(40))
	waitFor(t, "the records from the reported one at the function", 2*time.Minute, func() bool { return len(accepted(s.invs())) >= 60 })
	s.waitMetric(t, "poller_sink_invocations_total", `result="ok"`, 1)
	if got := s.run.metric(t, "poller_sink_invocations_total", `result="partial"`); got != 1 {
		t.Errorf("poller_sink_invocations_total{partial} = %v, want 1", got)
	}
	s.stop(t)
	invs := s.invs()
	if len(invs) != 2 {
		t.Fatalf("%d invocations, want 2 (the batch, then the batch from the reported record)", len(invs))
	}
	if invs[0].Result != "partial" || len(invs[0].Keys) != n {
		t.Errorf("first invocation: %s with %d records, want partial with %d", invs[0].Result, len(invs[0].Keys), n)
	}
	second := invs[1].Keys
	if invs[1].Result != "ok" || len(second) != 60 || second[0] != itemKey(40) || second[59] != itemKey(99) {
		t.Errorf("second invocation: %s with %d records from %v, want ok with %s..%s", invs[1].Result, len(second), second[:min(3, len(second))], itemKey(40), itemKey(99))
	}
	if len(s.run.reports(t)) != 0 {
		t.Errorf("on_failure got reports, want none")
	}
}
