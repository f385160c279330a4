package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// TestConcurrentRenewAndCheckpoint: a renew ticker and a checkpointing batch share one Held; neither
// ever sees the lease as lost because of the other.
func TestConcurrentRenewAndCheckpoint(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "me")
	start := h.Lease().Counter
	const n = 100
	var wg sync.WaitGroup
	wg.Go(func() {
		for range n {
			if ok, err := h.Renew(t.Context()); !ok || err != nil {
				t.Errorf("Renew() = %v, %v, want true, nil", ok, err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range n {
			seq := fmt.Sprintf("%d", 1000+i)
			if ok, err := h.Checkpoint(t.Context(), seq); !ok || err != nil {
				t.Errorf("Checkpoint(%s) = %v, %v, want true, nil", seq, ok, err)
				return
			}
		}
	})
	wg.Go(func() { // readers and refused writes do not disturb the writers
		for range n {
			if !h.Owned() || h.Lease().Owner != "me" {
				t.Errorf("Held = owned %v, lease %+v, want owned by me", h.Owned(), h.Lease())
				return
			}
			if _, err := h.Checkpoint(t.Context(), "x"); !errors.Is(err, ErrBadSequence) {
				t.Errorf("Checkpoint(x) = %v, want ErrBadSequence", err)
				return
			}
		}
	})
	wg.Wait()
	got := mustGet(t, s, "shardId-1")
	if got.Counter != start+2*n || got.Checkpoint != fmt.Sprintf("%d", 1000+n-1) || got.Owner != "me" {
		t.Fatalf("lease = counter %d checkpoint %s owner %s, want counter %d checkpoint %d owner me",
			got.Counter, got.Checkpoint, got.Owner, start+2*n, 1000+n-1)
	}
	if hl := h.Lease(); hl.Counter != got.Counter {
		t.Fatalf("Held.Lease().Counter = %d, want %d", hl.Counter, got.Counter)
	}
}

// TestLostAnswers: a write whose answer was lost may have landed; Held must neither report a lease it
// still holds as lost, nor keep one another worker took.
func TestLostAnswers(t *testing.T) {
	t.Parallel()
	f := &faulty{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { f.DynamoAPI = api; return f })
	tests := []struct {
		name string
		run  func(t *testing.T, h *Held)
	}{
		{
			name: "a renew whose answer was lost is adopted by the next checkpoint",
			run: func(t *testing.T, h *Held) {
				f.inject("lost")
				if _, err := h.Renew(t.Context()); !errors.Is(err, errAnswerLost) {
					t.Fatalf("Renew() = %v, want the lost answer", err)
				}
				if ok, err := h.Checkpoint(t.Context(), "10"); !ok || err != nil {
					t.Fatalf("Checkpoint() after a lost answer = %v, %v, want true, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); got.Checkpoint != "10" || got.Counter != 4 {
					t.Fatalf("lease = checkpoint %s counter %d, want 10 and 4 (create, take, renew, checkpoint)", got.Checkpoint, got.Counter)
				}
			},
		},
		{
			name: "a checkpoint whose answer was lost is not refused when repeated",
			run: func(t *testing.T, h *Held) {
				f.inject("lost")
				if _, err := h.Checkpoint(t.Context(), "10"); !errors.Is(err, errAnswerLost) {
					t.Fatalf("Checkpoint() = %v, want the lost answer", err)
				}
				if ok, err := h.Checkpoint(t.Context(), "10"); !ok || err != nil {
					t.Fatalf("repeated Checkpoint() = %v, %v, want true, nil", ok, err)
				}
			},
		},
		{
			name: "a smaller checkpoint after a lost answer is refused against the landed one",
			run: func(t *testing.T, h *Held) {
				f.inject("lost")
				if _, err := h.Checkpoint(t.Context(), "20"); !errors.Is(err, errAnswerLost) {
					t.Fatalf("Checkpoint() = %v, want the lost answer", err)
				}
				if ok, err := h.Checkpoint(t.Context(), "15"); ok || !errors.Is(err, ErrBackwards) {
					t.Fatalf("Checkpoint(15) after 20 landed = %v, %v, want false, ErrBackwards", ok, err)
				}
				if !h.Owned() || h.Lease().Checkpoint != "20" {
					t.Fatalf("Held = owned %v checkpoint %s, want owned at 20", h.Owned(), h.Lease().Checkpoint)
				}
			},
		},
		{
			name: "an SDK retry of a checkpoint that had landed is a success",
			run: func(t *testing.T, h *Held) {
				f.inject("retried")
				if ok, err := h.Checkpoint(t.Context(), "10"); !ok || err != nil {
					t.Fatalf("Checkpoint() = %v, %v, want true, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); got.Checkpoint != "10" || !h.Owned() {
					t.Fatalf("lease = %+v, want checkpoint 10 still held", got)
				}
			},
		},
		{
			name: "an SDK retry of a release that had landed is a success",
			run: func(t *testing.T, h *Held) {
				f.inject("retried")
				if ok, err := h.Release(t.Context()); !ok || err != nil {
					t.Fatalf("Release() = %v, %v, want true, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); got.Owner != "" || h.Owned() {
					t.Fatalf("lease = %+v (held %v), want it free", got, h.Owned())
				}
			},
		},
		{
			name: "an SDK retry of a finish that had landed is a success",
			run: func(t *testing.T, h *Held) {
				f.inject("retried")
				if ok, err := h.Finish(t.Context(), "30"); !ok || err != nil {
					t.Fatalf("Finish() = %v, %v, want true, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); !got.Finished || got.Checkpoint != "30" {
					t.Fatalf("lease = %+v, want finished at 30", got)
				}
			},
		},
		{
			name: "a lost answer does not hide a takeover",
			run: func(t *testing.T, h *Held) {
				f.inject("lost")
				if _, err := h.Renew(t.Context()); !errors.Is(err, errAnswerLost) {
					t.Fatalf("Renew() = %v, want the lost answer", err)
				}
				took(t, s, mustGet(t, s, h.Lease().ShardID), "next")
				if ok, err := h.Checkpoint(t.Context(), "10"); ok || err != nil {
					t.Fatalf("Checkpoint() after a takeover = %v, %v, want false, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); got.Owner != "next" || got.Checkpoint != "" {
					t.Fatalf("lease = %+v, want next's, without checkpoint", got)
				}
			},
		},
		{
			name: "a lost answer followed by a release and a take does not count as ours",
			run: func(t *testing.T, h *Held) {
				f.inject("lost")
				if _, err := h.Release(t.Context()); !errors.Is(err, errAnswerLost) {
					t.Fatalf("Release() = %v, want the lost answer", err)
				}
				took(t, s, mustGet(t, s, h.Lease().ShardID), "next")
				if ok, err := h.Release(t.Context()); ok || err != nil {
					t.Fatalf("Release() after another took it = %v, %v, want false, nil", ok, err)
				}
				if got := mustGet(t, s, h.Lease().ShardID); got.Owner != "next" {
					t.Fatalf("lease owner = %q, want next", got.Owner)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := took(t, s, created(t, s, Lease{ShardID: fmt.Sprintf("shardId-%d", i)}), "me")
			tt.run(t, h)
		})
	}
}

// TestTakeAfterSDKRetry: the SDK retried a Take whose first attempt landed; the retry fails its
// condition on our own write, which Take recognises.
func TestTakeAfterSDKRetry(t *testing.T) {
	t.Parallel()
	f := &faulty{}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { f.DynamoAPI = api; return f })
	l := created(t, s, Lease{ShardID: "shardId-1"})
	f.inject("retried")
	h, ok, err := s.Take(t.Context(), l, "me")
	if !ok || err != nil || h.Lease().Owner != "me" {
		t.Fatalf("Take() = %v, %v, %v, want held by me", h, ok, err)
	}
	if ok, err := h.Renew(t.Context()); !ok || err != nil {
		t.Fatalf("Renew() = %v, %v, want true, nil", ok, err)
	}
}

// gated holds UpdateItem calls until let through, once armed.
type gated struct {
	DynamoAPI
	armed   atomic.Bool
	entered chan struct{}
	through chan struct{}
}

func (g *gated) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if g.armed.Load() {
		g.entered <- struct{}{}
		<-g.through
	}
	return g.DynamoAPI.UpdateItem(ctx, in, o...)
}

// TestWaitForTurnIsCancelable: a write waiting behind another one gives up when its ctx ends, and
// changes nothing.
func TestWaitForTurnIsCancelable(t *testing.T) {
	t.Parallel()
	g := &gated{entered: make(chan struct{}), through: make(chan struct{})}
	s := newStore(t, func(api DynamoAPI) DynamoAPI { g.DynamoAPI = api; return g })
	h := took(t, s, created(t, s, Lease{ShardID: "shardId-1"}), "me")
	g.armed.Store(true)

	done := make(chan error, 1)
	go func() {
		_, err := h.Renew(t.Context())
		done <- err
	}()
	<-g.entered // the renew holds the turn inside UpdateItem

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ok, err := h.Checkpoint(ctx, "5"); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkpoint() with a canceled ctx = %v, %v, want false, context.Canceled", ok, err)
	}
	close(g.through)
	if err := <-done; err != nil {
		t.Fatalf("Renew() = %v", err)
	}
	g.armed.Store(false)
	if ok, err := h.Checkpoint(t.Context(), "5"); !ok || err != nil {
		t.Fatalf("Checkpoint() afterwards = %v, %v, want true, nil", ok, err)
	}
}
