package pace

import (
	"runtime/metrics"
	"sync"
	"time"
)

// starvedDelay is the scheduling delay that marks a process short of CPU: when at least a tenth of
// the times goroutines became runnable since the last look they waited longer than this to run, a
// renewal's write (a few wake-ups: send, receive, the caller) waits behind the readers too. A
// process with CPU to spare schedules in microseconds.
const starvedDelay = 5 * time.Millisecond

const schedLatencies = "/sched/latencies:seconds"

// Scheduler tells whether the process was short of CPU since it was last asked, from the Go
// runtime's histogram of how long runnable goroutines waited to run. Safe for concurrent use.
type Scheduler struct {
	mu     sync.Mutex
	sample []metrics.Sample
	last   []uint64 // the histogram's counts at the last look
}

// NewScheduler returns a Scheduler whose first Starved covers the time since the process started.
func NewScheduler() *Scheduler {
	return &Scheduler{sample: []metrics.Sample{{Name: schedLatencies}}}
}

// Starved reports whether at least a tenth of the goroutine wake-ups since the last call waited over
// starvedDelay to run.
func (s *Scheduler) Starved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return true // an unknown runtime: trust the rounds alone
	}
	h := s.sample[0].Value.Float64Histogram()
	var total, slow uint64
	for i, n := range h.Counts {
		if i < len(s.last) {
			n -= s.last[i]
		}
		total += n
		if h.Buckets[i] >= starvedDelay.Seconds() { // bucket i covers [Buckets[i], Buckets[i+1])
			slow += n
		}
	}
	s.last = append(s.last[:0], h.Counts...)
	return total > 0 && slow*10 >= total
}
