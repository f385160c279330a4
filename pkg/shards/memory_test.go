package shards_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/pkg/membudget"
	"github.com/poller-dev/poller/pkg/shards"
)

// A reader whose shard holds its whole memory budget makes no GetRecords call until bytes are
// released, and charges every page it reads. Its first call reads one record to learn the records'
// size, and that record goes out with the next call's page, not alone. The reader runs in a synctest
// bubble, so "no call" is checked once it is durably blocked, not after a pause.
func TestReaderWaitsForItsMemoryBudgetBeforeEachCall(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{})
	st := srv.CreateStream("T", streamstest.KeysOnly)
	shard := st.OpenShard("")
	want := st.Put(shard, streamstest.Inserts(30)...)
	synctest.Test(t, func(t *testing.T) {
		client := newClient(t, srv, false)
		acct := membudget.New(1<<30).Open(1, nil) // any page fills the shard's budget
		obs := newObserver()
		r := &shards.Reader{
			API: client, StreamARN: st.ARN(), ShardID: shard, Start: shards.TrimHorizon,
			PollInterval: time.Hour, Limit: 10, Backoff: (&backoffLog{}).fn, Hooks: obs, Memory: acct,
		}
		ctx, cancel := context.WithCancel(t.Context())
		pages := make(chan shards.Page, 100) // the consumer never holds the reader up
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx, pages) }()

		synctest.Wait()
		if n := srv.Calls(streamstest.OpGetRecords); n != 2 {
			t.Fatalf("GetRecords calls = %d, want 2 (the probe, then one page), then a wait", n)
		}
		p := <-pages
		if got := seqsOf(p); !slices.Equal(got, want[:2]) {
			t.Errorf("first page = %v, want the probe's record and the next one, %v", got, want[:2])
		}
		if want := shards.PageBytes(p.Records); p.Bytes != want || acct.Held() != want || want <= 0 {
			t.Errorf("page charged %d, account holds %d, want both PageBytes = %d", p.Bytes, acct.Held(), want)
		}
		acct.Release(p.Bytes) // the consumer is done with it
		synctest.Wait()
		if n := srv.Calls(streamstest.OpGetRecords); n != 3 {
			t.Errorf("GetRecords calls after the release = %d, want 3", n)
		}
		obs.mu.Lock()
		waits := obs.memoryWaits
		obs.mu.Unlock()
		if waits != 2 {
			t.Errorf("memory waits observed = %d, want 2 (one after each page)", waits)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
}

func TestPageLimit(t *testing.T) {
	tests := []struct {
		name            string
		most            int32
		room, perRecord int64
		want            int32
	}{
		{name: "small records: the API's limit", most: 1000, room: 16 << 20, perRecord: 1200, want: 1000},
		{name: "large records: what the room holds", most: 1000, room: 16 << 20, perRecord: 400 << 10, want: 40},
		{name: "no room left: one record, as a shard holding nothing may always read", most: 1000, room: 0, perRecord: 1000, want: 1},
		{name: "unknown size: the API's limit", most: 1000, room: 10, perRecord: 0, want: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shards.PageLimit(tt.most, tt.room, tt.perRecord); got != tt.want {
				t.Errorf("pageLimit(%d, %d, %d) = %d, want %d", tt.most, tt.room, tt.perRecord, got, tt.want)
			}
		})
	}
}

// The probe's record is read and must not be lost: when the shard is gone before the next page, it
// is passed on alone before Run returns ErrShardGone.
func TestReaderPassesTheProbesRecordOnWhenTheShardIsGone(t *testing.T) {
	srv := streamstest.New(t, streamstest.Options{})
	st := srv.CreateStream("T", streamstest.KeysOnly)
	shard := st.OpenShard("")
	want := st.Put(shard, streamstest.Inserts(5)...)
	srv.Fault(streamstest.OpGetRecords, func(r streamstest.Request) error {
		if r.Call >= 2 {
			return streamstest.ResourceNotFound()
		}
		return nil
	})
	rn := start(t, &shards.Reader{
		API: newClient(t, srv, true), StreamARN: st.ARN(), ShardID: shard, Start: shards.TrimHorizon,
		PollInterval: time.Hour, Limit: 10, Backoff: (&backoffLog{}).fn, Hooks: newObserver(),
		Memory: membudget.New(1<<30).Open(1<<30, nil),
	})
	if got := seqsOf(rn.next(t)); !slices.Equal(got, want[:1]) {
		t.Errorf("page = %v, want the probe's record %v", got, want[:1])
	}
	if err := rn.wait(t); !errors.Is(err, shards.ErrShardGone) {
		t.Errorf("Run() = %v, want ErrShardGone", err)
	}
}
