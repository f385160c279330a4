package progress

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// tableWrites is a lease table as a Checkpointer sees it: each write answers with the next error
// of errs (nil once they run out) and is recorded.
type tableWrites struct {
	mu      sync.Mutex
	errs    []error
	tried   []string
	blocked chan struct{} // if not nil, the first write waits for it
}

func (w *tableWrites) write(_ context.Context, seq string) error {
	w.mu.Lock()
	first := len(w.tried) == 0
	w.tried = append(w.tried, seq)
	var err error
	if len(w.errs) > 0 {
		err, w.errs = w.errs[0], w.errs[1:]
	}
	w.mu.Unlock()
	if first && w.blocked != nil {
		<-w.blocked
	}
	return err
}

func noBackoff(int) time.Duration { return 0 }

func TestCheckpointer(t *testing.T) {
	throttled := errors.New("throttled")
	refused := fmt.Errorf("lease lost: %w", ErrCheckpointRefused)
	tests := []struct {
		name      string
		errs      []error
		sets      []string // the first is set while the table is slow; the rest while it writes
		wantTried []string
		wantErr   error
	}{
		{name: "checkpoints set during a write are coalesced to the newest",
			sets: []string{"1", "2", "3", "4"}, wantTried: []string{"1", "4"}},
		{name: "a failed write is retried in place, with the newest checkpoint",
			errs: []error{throttled, throttled}, sets: []string{"1", "2"}, wantTried: []string{"1", "2", "2"}},
		{name: "a refused write ends the checkpointer and nothing more is written",
			errs: []error{refused}, sets: []string{"1", "2"}, wantTried: []string{"1"}, wantErr: ErrCheckpointRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := &tableWrites{errs: tt.errs, blocked: make(chan struct{})}
			c := NewCheckpointer(t.Context(), table.write, noBackoff, zaptest.NewLogger(t))
			c.Set(tt.sets[0])
			waitFor(t, func() bool { table.mu.Lock(); defer table.mu.Unlock(); return len(table.tried) == 1 })
			for _, seq := range tt.sets[1:] {
				c.Set(seq)
			}
			close(table.blocked)
			err := c.Close()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Close() = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(table.tried) != fmt.Sprint(tt.wantTried) {
				t.Errorf("writes tried %v, want %v", table.tried, tt.wantTried)
			}
			if tt.wantErr != nil {
				if got := <-c.Failed(); !errors.Is(got, tt.wantErr) {
					t.Errorf("Failed() delivered %v, want %v", got, tt.wantErr)
				}
				return
			}
			if got := <-c.Wrote(); got != tt.sets[len(tt.sets)-1] {
				t.Errorf("Wrote() delivered %s, want the newest checkpoint %s", got, tt.sets[len(tt.sets)-1])
			}
		})
	}
}

// TestCheckpointerStopsRetryingWhenCanceled: a write that keeps failing is retried until ctx ends;
// the error then says the checkpoint was not written, with ctx's error and the last attempt's.
func TestCheckpointerStopsRetryingWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var attempts int
	var mu sync.Mutex
	write := func(context.Context, string) error {
		mu.Lock()
		defer mu.Unlock()
		if attempts++; attempts == 3 {
			cancel()
		}
		return errors.New("unreachable table")
	}
	c := NewCheckpointer(ctx, write, func(int) time.Duration { return time.Millisecond }, zaptest.NewLogger(t))
	c.Set("1")
	err := <-c.Failed()
	if !errors.Is(err, context.Canceled) || c.Close() == nil {
		t.Fatalf("Failed() = %v, want context.Canceled, and Close() to return it", err)
	}
	if want := "checkpoint 1 not written: context canceled (last attempt: unreachable table)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// waitFor polls cond until it holds, for at most 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
