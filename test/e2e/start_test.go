package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
)

// latest is a source line (after the table or stream ARN) that starts the pipeline at LATEST.
const latest = "\n      starting_position: LATEST"

// TestLatestFirstDeployWithBrokenSinkLosesNothingAcrossARestart: a pipeline deployed for the first
// time with starting_position LATEST and a sink that fails reads records but checkpoints none; it is
// stopped (kill -9, or SIGTERM) and started again with a working sink. Every record written after the
// first start arrives, none written before it.
func TestLatestFirstDeployWithBrokenSinkLosesNothingAcrossARestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			const history, before, after = 50, 50, 10
			endpoint := testenv.NewDynamoDBLocal(t)
			db := dynamo(endpoint)
			createTable(t, db, "Scores")
			writeItems(t, db, "Scores", 0, history, 10)

			s := newSink(t)
			s.fail = func(events.DynamoDBEvent) bool { return true }
			port := freePort(t)
			cfg := pipelineConfig{Endpoint: endpoint, Table: "Scores" + latest, SinkURL: s.srv.URL, Port: port}.yaml(t)
			first := startPoller(t, cfg)
			waitFor(t, "the LATEST iterator to be read", time.Minute, func() bool {
				return metricValue(t, port, "e2e", "poller_getrecords_total", `result="ok"`) > 0
			})
			writeItems(t, db, "Scores", history, before, 10)
			waitFor(t, "a failed call with the new records", time.Minute, func() bool { return len(s.triedCalls()) > 0 })
			first.stop(t, sig)
			s.settle(t)
			if got := s.count(); got != 0 {
				t.Fatalf("%d records accepted by the broken sink", got)
			}

			s.mu.Lock()
			s.fail = nil
			s.mu.Unlock()
			second := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Scores" + latest, SinkURL: s.srv.URL}.yaml(t))
			writeItems(t, db, "Scores", history+before, after, 10)
			last := itemKey(history + before + after - 1)
			waitFor(t, "the record written after the restart", 2*time.Minute, func() bool { return byKey(s.snapshot())[last] > 0 })
			second.stop(t, syscall.SIGTERM)

			counts := byKey(s.snapshot())
			for i := range history + before + after {
				k, c := itemKey(i), counts[itemKey(i)]
				switch {
				case i < history && c > 0:
					t.Errorf("%s (written before the first start) delivered %d times, want never", k, c)
				case i >= history && c != 1:
					t.Errorf("%s (written after the first start) delivered %d times, want once", k, c)
				}
			}
			checkOrder(t, s.snapshot())
		})
	}
}

// TestLatestReplicasStartedTogetherSkipTheHistory: two processes start at once on a stream of eight
// shards with history, with starting_position LATEST: every lease is created at LATEST (one worker
// decides for both) and no record written before the start is delivered, while every record written
// after it is.
func TestLatestReplicasStartedTogetherSkipTheHistory(t *testing.T) {
	// The history is an hour old: a lease handed over before its shard got a record is read again
	// from the horizon, skipping what was created well before the start (see DESIGN.md).
	clock := &offsetClock{}
	clock.offset.Store(int64(-time.Hour))
	e := replicaEnvWithClock(t, 8, clock)
	for i, sh := range e.shards {
		for n := range 20 {
			k := streamstest.S(fmt.Sprintf("h%02d-%06d", i, n))
			e.st.Put(sh, streamstest.Insert(streamstest.Item{"pk": k}, streamstest.Item{"pk": k}))
		}
	}
	clock.offset.Store(0)
	e.cfg.StreamARN += latest
	e.start(t, "a")
	e.start(t, "b")
	waitFor(t, "every lease to be resolved", time.Minute, func() bool {
		leases, _, err := e.leases.List(t.Context(), "e2e")
		if err != nil || len(leases) != len(e.shards) {
			return false
		}
		for _, l := range leases {
			if l.StartTime.IsZero() {
				return false
			}
		}
		return true
	})
	leases, _, err := e.leases.List(t.Context(), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.StartAt != checkpoint.StartLatest {
			t.Errorf("lease %s: start_at %q, want %q", l.ShardID, l.StartAt, checkpoint.StartLatest)
		}
	}
	stop := e.write(t, 20*time.Millisecond)
	waitFor(t, "records written after the start to arrive", time.Minute, func() bool { return e.sink.count() >= 3*len(e.shards) })
	n := stop()
	e.waitDelivered(t, n)
	recs := e.sink.snapshot()
	checkAllInOrder(t, recs, len(e.shards), n)
	for _, r := range recs {
		if strings.HasPrefix(r.Key, "h") {
			t.Fatalf("%s delivered (by %s): a record written before the start", r.Key, r.From)
		}
	}
}

// TestReEnabledStreamIsFollowed: the table's stream is disabled and enabled again while poller reads
// it (a new stream ARN): every record of both streams arrives once, the old stream's first.
func TestReEnabledStreamIsFollowed(t *testing.T) {
	const perStream = 200
	endpoint := testenv.NewDynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, "Scores")
	s := newSink(t)
	s.delay = 20 * time.Millisecond // the old stream is still being read when the new one starts
	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: "Scores", SinkURL: s.srv.URL, BatchSize: 10}.yaml(t))
	writeItems(t, db, "Scores", 0, perStream, 10)
	waitFor(t, "the first records", time.Minute, func() bool { return s.count() > 0 })

	oldARN := streamOf(t, db)
	setStream(t, db, false)
	setStream(t, db, true)
	if streamOf(t, db) == oldARN {
		t.Fatalf("the re-enabled stream has the old ARN %s", oldARN)
	}
	writeItems(t, db, "Scores", perStream, perStream, 10)
	waitFor(t, "every record of both streams", 2*time.Minute, func() bool { return len(distinct(s.snapshot())) >= 2*perStream })
	time.Sleep(time.Second) // a redelivery would show
	p.stop(t, syscall.SIGTERM)

	recs := s.snapshot()
	counts := byKey(recs)
	for i := range 2 * perStream {
		if c := counts[itemKey(i)]; c != 1 {
			t.Errorf("%s delivered %d times, want once", itemKey(i), c)
		}
	}
	for i, r := range recs {
		if i > 0 && r.Key < recs[i-1].Key {
			t.Fatalf("%s arrived after %s: the new stream's records must follow every record of the old one", r.Key, recs[i-1].Key)
		}
	}
}

func streamOf(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	out, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("Scores")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Table.LatestStreamArn)
}

func setStream(t *testing.T, db *dynamodb.Client, enabled bool) {
	t.Helper()
	spec := &types.StreamSpecification{StreamEnabled: aws.Bool(enabled)}
	if enabled {
		spec.StreamViewType = types.StreamViewTypeNewAndOldImages
	}
	if _, err := db.UpdateTable(context.Background(), &dynamodb.UpdateTableInput{TableName: aws.String("Scores"), StreamSpecification: spec}); err != nil {
		t.Fatalf("set the table's stream enabled=%t: %v", enabled, err)
	}
}

// offsetClock is the system clock moved by an offset (nanoseconds), for records created in the past.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// replicaEnvWithClock is newReplicaEnv with the Streams endpoint's clock given.
func replicaEnvWithClock(t *testing.T, shards int, clock streamstest.Clock) *replicaEnv {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t), Clock: clock})
	st := srv.CreateStream("Scores", streamtypes.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	table := fmt.Sprintf("leases-%d", time.Now().UnixNano())
	e := &replicaEnv{srv: srv, st: st, shards: st.OpenShards(shards), sink: newSink(t),
		leases: checkpoint.New(dynamo(testenv.DynamoDBLocal(t)), table)}
	e.cfg = pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: e.sink.srv.URL, LeaseTable: table,
		LeaseDuration: leaseDuration.String(), RenewInterval: renewInterval.String()}
	return e
}
