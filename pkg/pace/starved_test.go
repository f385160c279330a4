package pace

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSchedulerSeesAProcessShortOfCPU: with one P and many goroutines that each want it for a while,
// runnable goroutines wait for milliseconds, and Starved says so. The runtime records the scheduling
// latency of about one goroutine in eight (a new goroutine is tracked with probability 1/8), so there
// must be many: with 20, none was tracked in about one run in 14 ((7/8)^20); with 200 the chance is
// about 1e-12. Each spins 2 ms, less than a preemption slice, so they run one after the other and
// all but the first few wait well over 5 ms.
func TestSchedulerSeesAProcessShortOfCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := NewScheduler()
	s.Starved() // from here on
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for end := time.Now().Add(2 * time.Millisecond); time.Now().Before(end); {
			}
		})
	}
	wg.Wait()
	if !s.Starved() {
		t.Fatal("Starved() = false after 200 goroutines shared one P for 2 ms each, want true")
	}
}
