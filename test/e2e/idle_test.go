package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
)

// TestIdleShardPollsOnceASecond: with idle_poll_interval 1s the binary's reader of an idle shard
// backs off to one GetRecords call a second, as the Streams endpoint counts them, and a record
// written later still arrives. (When exactly the calls happen is checked in fake time by the
// reader's own tests; here only the upper bound, which a slow machine cannot break.)
func TestIdleShardPollsOnceASecond(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t)})
	st := srv.CreateStream("Idle", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	shard := st.OpenShard("")
	s := newSink(t)
	p := startPoller(t, pipelineConfig{Endpoint: srv.URL, StreamARN: st.ARN(), SinkURL: s.srv.URL,
		LeaseDuration: "10s", RenewInterval: "2s", Extra: "    idle_poll_interval: 1s\n"}.yaml(t))

	// Four calls at poll_interval (250 ms), one 500 ms later, then one a second: from the fifth
	// call on, each starts at least a second after the one before.
	calls := func() int { return srv.Calls(streamstest.OpGetRecords) }
	waitFor(t, "the reader to back off", time.Minute, func() bool { return calls() >= 5 })
	const window = 5 * time.Second
	from := calls()
	time.Sleep(window) // a measuring window, not a wait for an event
	if n := calls() - from; n > 6 {
		t.Errorf("an idle shard made %d GetRecords calls in %s, want at most 6 (1.2 a second)", n, window)
	}

	st.Put(shard, streamstest.Insert(streamstest.Item{"pk": streamstest.S("late")}, streamstest.Item{"pk": streamstest.S("late")}))
	waitFor(t, "the record written to the idle shard", time.Minute, func() bool { return s.count() >= 1 })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d, want 0", code)
	}
}
