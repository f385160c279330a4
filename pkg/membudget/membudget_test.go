package membudget

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWhenAShardMayRead(t *testing.T) {
	tests := []struct {
		name         string
		budget       int64
		shardLimit   int64
		others, mine int64 // bytes held by another shard and by this one
		want         bool  // may read
	}{
		{name: "under both limits", budget: 100, shardLimit: 50, others: 10, mine: 10, want: true},
		{name: "at the shard's limit", budget: 100, shardLimit: 50, mine: 50, want: false},
		{name: "past the shard's limit by a page", budget: 100, shardLimit: 50, mine: 70, want: false},
		{name: "the process budget is spent by others", budget: 100, shardLimit: 50, others: 95, mine: 5, want: false},
		{name: "a shard holding nothing may always read one page", budget: 100, shardLimit: 50, others: 150, mine: 0, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.budget)
			b.Open(1<<40, nil).Charge(tt.others)
			a := b.Open(tt.shardLimit, nil)
			a.Charge(tt.mine)
			if got := !a.Full(); got != tt.want {
				t.Errorf("may read = %v, want %v (held %d of %d, budget %d of %d)", got, tt.want, a.Held(), tt.shardLimit, b.Used(), tt.budget)
			}
		})
	}
}

// A shard that waits is woken by a release anywhere in the process: its own records done, or another
// shard's.
func TestWaitEndsWhenBytesAreReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(100)
		other := b.Open(100, nil)
		mine := b.Open(100, nil)
		other.Charge(80)
		mine.Charge(30)
		waited := make(chan error, 1)
		go func() { waited <- mine.Wait(context.Background()) }()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("Wait() returned while the budget was spent")
		default:
		}
		other.Release(50) // 60 of 100 now
		if err := <-waited; err != nil {
			t.Errorf("Wait() = %v, want nil", err)
		}
	})
}

func TestWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(10)
		a := b.Open(10, nil)
		a.Charge(10)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Wait(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait() = %v, want context.Canceled", err)
		}
	})
}

func TestCloseGivesBackWhatTheAccountHeldAndReportsChanges(t *testing.T) {
	b := New(1000)
	var gauge int64
	a := b.Open(500, func(d int64) { gauge += d })
	a.Charge(300)
	a.Release(100)
	a.Charge(50)
	if gauge != 250 || b.Used() != 250 {
		t.Fatalf("gauge = %d, Used() = %d, want 250, 250", gauge, b.Used())
	}
	a.Close()
	if gauge != 0 || b.Used() != 0 || a.Held() != 0 {
		t.Errorf("after Close: gauge = %d, Used() = %d, Held() = %d, want 0, 0, 0", gauge, b.Used(), a.Held())
	}
}

func TestRoomIsTheLesserOfWhatTheShardAndTheProcessHaveLeft(t *testing.T) {
	b := New(100)
	other, mine := b.Open(100, nil), b.Open(50, nil)
	mine.Charge(10)
	if got := mine.Room(); got != 40 {
		t.Errorf("Room() = %d, want 40 (the shard's own limit)", got)
	}
	other.Charge(70)
	if got := mine.Room(); got != 20 {
		t.Errorf("Room() = %d, want 20 (the process budget)", got)
	}
	other.Charge(100)
	if got := mine.Room(); got != 0 {
		t.Errorf("Room() = %d, want 0 once the budget is passed", got)
	}
}
