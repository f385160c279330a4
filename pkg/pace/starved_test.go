package pace

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSchedulerSeesAProcessShortOfCPU: with one P and many goroutines that each want it for a while,
// runnable goroutines wait for milliseconds, and Starved says so.
func TestSchedulerSeesAProcessShortOfCPU(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := NewScheduler()
	s.Starved() // from here on
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
			}
		})
	}
	wg.Wait()
	if !s.Starved() {
		t.Fatal("Starved() = false after 20 goroutines shared one P for 20 ms each, want true")
	}
}
