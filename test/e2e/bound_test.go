package e2e

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/poller-dev/poller/internal/testenv"
)

// With parallelization_factor 4, one partition key's batch fails again and again while the other
// keys' lanes could run ahead; then the process is killed with -9 and a new one takes over. Only the
// records that reached the sink beyond the last checkpoint written are delivered again, and those
// are at most two batches per lane, 2 x batch_size x parallelization_factor: none is lost, and each
// key's records arrive in order within each process.
func TestKill9WithParallelizationFactor4RepeatsAtMostTwoBatchesPerLane(t *testing.T) {
	const keys, versions, batch, lanes = 40, 50, 10, 4
	const n = keys * versions
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Lanes")
	writeVersions(t, db, "Lanes", keys, versions)

	s := newSink(t)
	var failing atomic.Bool
	failing.Store(true)
	s.fail = func(ev events.DynamoDBEvent) bool {
		if !failing.Load() {
			return false
		}
		for _, r := range ev.Records {
			if keyOf(r) == "key-00" {
				return true
			}
		}
		return false
	}
	cfg := func(name string) string {
		return pipelineConfig{Endpoint: endpoint, Table: "Lanes", SinkURL: s.srv.URL, BatchSize: batch,
			Extra:     fmt.Sprintf("    parallelization_factor: %d\n", lanes),
			SinkExtra: "      headers:\n        X-Poller: " + name + "\n"}.yaml(t)
	}

	first := startPoller(t, cfg("first"))
	// key-00's first batch fails from the start: let it be retried a few times (over a second of
	// backoff), time enough for the other lanes to run far ahead if nothing held them.
	waitFor(t, "key-00's batch to fail five times", 2*time.Minute, func() bool { return callsWithKey(s, "key-00") >= 5 })
	first.stop(t, syscall.SIGKILL)
	s.settle(t)
	firstRun := len(s.snapshot())

	failing.Store(false)
	second := startPoller(t, cfg("second"))
	waitFor(t, "every record", 3*time.Minute, func() bool { return len(distinctSeqs(s.snapshot())) >= n })
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("second poller exited with %d after SIGTERM, want 0", code)
	}

	recs := s.snapshot()
	dups := 0
	for _, c := range distinctSeqs(recs) {
		if c > 1 {
			dups++
		}
	}
	t.Logf("first run: %d records accepted before kill -9; %d delivered twice (bound %d)", firstRun, dups, 2*batch*lanes)
	if dups > 2*batch*lanes {
		t.Errorf("%d records delivered twice after kill -9, want at most 2 x batch_size x parallelization_factor = %d", dups, 2*batch*lanes)
	}
	checkKeyOrderPerProcess(t, recs)
}

// writeVersions writes versions rounds of keys items key-00.. (one stream record per item and round).
func writeVersions(t *testing.T, db *dynamodb.Client, table string, keys, versions int) {
	t.Helper()
	for v := range versions {
		for from := 0; from < keys; from += 25 {
			var reqs []types.WriteRequest
			for k := from; k < min(from+25, keys); k++ {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
					"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("key-%02d", k)},
					"v":  &types.AttributeValueMemberN{Value: fmt.Sprint(v)},
				}}})
			}
			in := map[string][]types.WriteRequest{table: reqs}
			for len(in[table]) > 0 {
				out, err := db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: in})
				if err != nil {
					t.Fatalf("batch write: %v", err)
				}
				in = out.UnprocessedItems
			}
		}
	}
}

// callsWithKey counts the sink calls, failed or not, that carried a record of key.
func callsWithKey(s *sink, key string) int {
	n := 0
	for _, call := range s.triedCalls() {
		for _, r := range call {
			if r.Key == key {
				n++
				break
			}
		}
	}
	return n
}

// distinctSeqs counts deliveries per sequence number.
func distinctSeqs(recs []received) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.Seq]++
	}
	return m
}

// checkKeyOrderPerProcess fails unless, within what each process delivered, each key's records
// arrive in increasing sequence-number order.
func checkKeyOrderPerProcess(t *testing.T, recs []received) {
	t.Helper()
	last := map[string]*big.Int{}
	for _, r := range recs {
		seq, ok := new(big.Int).SetString(r.Seq, 10)
		if !ok {
			t.Fatalf("sequence number %q is not a decimal", r.Seq)
		}
		k := r.From + "/" + r.Key
		if prev := last[k]; prev != nil && seq.Cmp(prev) <= 0 {
			t.Fatalf("%s: %s arrived after %s in the %s process: out of order", r.Key, r.Seq, prev, strings.TrimSpace(r.From))
		}
		last[k] = seq
	}
}
