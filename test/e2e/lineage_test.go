package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// DynamoDB Local cannot split a shard, so the stream comes from the Streams test endpoint, which
// passes the lease table's DynamoDB calls on to DynamoDB Local.
func TestChildRecordsArriveOnlyAfterEveryParentRecord(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Scores", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))

	put := func(shard, prefix string, n int) {
		for i := range n {
			k := fmt.Sprintf("%s-%04d", prefix, i)
			st.Put(shard, streamstest.Insert(streamstest.Item{"pk": streamstest.S(k)}, streamstest.Item{"pk": streamstest.S(k)}))
		}
	}
	root := st.OpenShard("")
	put(root, "root", 500)
	left, right := st.Split(root)
	put(left, "left", 300)
	put(right, "right", 300)
	leftChild := st.Rollover(left) // a grandchild: left -> leftChild
	put(leftChild, "leftchild", 200)

	s := newSink(t)
	p := startPoller(t, pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: s.srv.URL}.yaml(t))
	const total = 500 + 300 + 300 + 200
	waitFor(t, "every record of every shard", 2*time.Minute, func() bool { return s.count() >= total })

	// A shard opened while poller runs is found too.
	put(right, "right-late", 50)
	waitFor(t, "records written to a child after the start", time.Minute, func() bool { return s.count() >= total+50 })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d, want 0", code)
	}

	recs := s.snapshot()
	if len(recs) != total+50 {
		t.Fatalf("sink got %d records, want %d", len(recs), total+50)
	}
	last := map[string]int{}  // prefix -> arrival index of its last record
	first := map[string]int{} // prefix -> arrival index of its first record
	for i, r := range recs {
		prefix := r.Key[:len(r.Key)-5]
		if _, ok := first[prefix]; !ok {
			first[prefix] = i
		}
		last[prefix] = i
	}
	for _, edge := range [][2]string{{"root", "left"}, {"root", "right"}, {"left", "leftchild"}} {
		parent, child := edge[0], edge[1]
		if first[child] < last[parent] {
			t.Errorf("a %s record arrived at %d, before the last %s record (%d): child before parent", child, first[child], parent, last[parent])
		}
	}
	counts := byKey(recs)
	for k, c := range counts {
		if c != 1 {
			t.Errorf("%s delivered %d times, want once", k, c)
		}
	}
}
