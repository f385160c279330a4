package scale

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"

	"github.com/poller-dev/poller/internal/streamstest"
)

// leaseDuration is the default lease_duration: a lease whose counter stood still this long looks
// dead to another replica.
const leaseDuration = 10 * time.Second

// renewalFailed is the warning poller logs for each renewal that failed or timed out.
const renewalFailed = "renewing a lease failed"

// header prints the first line of a scenario's block.
func header(name string, n int) {
	poll := "default (0)"
	if *idlePoll > 0 {
		poll = idlePoll.String()
	}
	fmt.Printf("\n=== %s, %d shards, idle_poll_interval %s, %d cores, load average %s, %s\n",
		name, n, poll, runtime.NumCPU(), loadavg(), time.Now().UTC().Format(time.RFC3339))
}

// line prints one figure of the report.
func line(key, format string, args ...any) {
	fmt.Printf("%-34s %s\n", key+":", fmt.Sprintf(format, args...))
}

// usage prints what the processes used between s0 and s1: CPU in cores (the poller's, the harness's,
// which is the Streams endpoint and the sink, and the rest of the machine's), calls, renewal rounds.
func usage(b *testing.B, s0, s1 snapshot, n int, ps ...*proc) {
	secs := s1.at.Sub(s0.at).Seconds()
	cores := func(pid int) float64 { return (s1.cpu[pid] - s0.cpu[pid]).Seconds() / secs }
	var pollers float64
	for _, p := range ps {
		c := cores(p.cmd.Process.Pid)
		pollers += c
		rss, hwm, err := memory(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		line("poller "+p.id, "CPU %.2f cores, RSS %.0f MiB (peak %.0f MiB)", c, rss, hwm)
		b.ReportMetric(c, p.id+"_cores")
		b.ReportMetric(rss, p.id+"_rss_MiB")
	}
	machine, harness := cores(0), cores(os.Getpid())
	line("machine", "%.2f cores busy over %.0f s: pollers %.2f, endpoint and sink %.2f, the rest %.2f (DynamoDB Local, other users)",
		machine, secs, pollers, harness, machine-pollers-harness)
	calls := func(op streamstest.Op) float64 { return float64(s1.calls[op] - s0.calls[op]) }
	perShard := calls(streamstest.OpGetRecords) / secs / float64(n)
	line("GetRecords", "%.3f calls/s per shard (%.0f per shard-hour)", perShard, perShard*3600)
	b.ReportMetric(perShard, "getrecords/s/shard")
	hour := func(op streamstest.Op) float64 { return calls(op) / secs * 3600 / float64(n) }
	line("per shard-hour", "DescribeStream %.1f, GetShardIterator %.1f, lease table: UpdateItem %.1f, Query %.2f, PutItem %.1f, DeleteItem %.1f, GetItem %.1f",
		hour(streamstest.OpDescribeStream), hour(streamstest.OpGetShardIterator), hour("UpdateItem"), hour("Query"),
		hour("PutItem"), hour("DeleteItem"), hour("GetItem"))
	for _, p := range ps {
		renewals(b, s0, s1, p)
	}
}

// renewals prints p's renewal rounds between s0 and s1, from its metrics and its log.
func renewals(b *testing.B, s0, s1 snapshot, p *proc) {
	m := func(name string) float64 { return s1.metrics[p.id+" "+name] - s0.metrics[p.id+" "+name] }
	failedLog := p.logCount(renewalFailed)
	if s1.metrics[p.id+" poller_lease_renewal_round_seconds_count"] < 0 {
		line("renewals "+p.id, "no poller_lease_renewal_round_seconds in this poller; %d %q warnings in its log since start", failedLog, renewalFailed)
		return
	}
	rounds := m("poller_lease_renewal_round_seconds_count")
	mean := 0.0
	if rounds > 0 {
		mean = m("poller_lease_renewal_round_seconds_sum") / rounds
	}
	line("renewals "+p.id, "%.0f rounds, mean %.3f s, longest <= %.3f s (since start); %.0f failed or timed out in the window (%d warnings in the log since start)",
		rounds, mean, s1.metrics[p.id+" renewal_max"], m("poller_lease_renewal_failures_total"), failedLog)
	b.ReportMetric(mean, p.id+"_renewal_round_s")
	b.ReportMetric(m("poller_lease_renewal_failures_total"), p.id+"_renewal_failures")
	if slow := s1.metrics[p.id+" poller_poll_slowdown"]; slow >= 0 {
		line("poll pace "+p.id, "waits stretched %.1fx at the end of the window (poller_poll_slowdown; 1: poll_interval as configured)", slow)
		b.ReportMetric(slow, p.id+"_poll_slowdown")
	}
}

// watchLeases lists the lease table every lease_duration for d and returns the leases another replica
// would have judged expired at some listing (checkpoint.Tracker: the lease's counter stood still for a
// lease_duration, and so did its owner's heartbeat where the owner vouches for its leases with it),
// and the leases not owned by p at the last listing.
func (e *env) watchLeases(b *testing.B, d time.Duration, p *proc) (lapsed, notMine int) {
	b.Helper()
	judge := checkpoint.NewTracker(leaseDuration)
	prev, err := e.leaseState(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	judge.Observe(time.Now(), prev.leases, prev.workers)
	expired := map[string]bool{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		sleep(b, min(leaseDuration, time.Until(end)+time.Millisecond))
		p.alive(b)
		cur, err := e.leaseState(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range judge.Observe(time.Now(), cur.leases, cur.workers).Expired {
			expired[l.ShardID] = true
		}
		prev = cur
	}
	return len(expired), len(prev.counter) - prev.owners[p.id]
}

// runIdle: one process on n shards without records.
func runIdle(b *testing.B, n int) {
	e := newEnv(b, n)
	p := e.startPoller(b, "w1")
	held := e.waitHeld(b, n, p)
	header("idle", n)
	line("every lease held after", "%.1f s", held.Sub(p.started).Seconds())
	sleep(b, *settle)
	s0 := e.snapshot(b, p)
	lapsed, notMine := e.watchLeases(b, *window, p)
	s1 := e.snapshot(b, p)
	usage(b, s0, s1, n, p)
	line("leases over the window", "%d of %d looked expired (lease and owner's heartbeat still for a lease_duration, %s) at least once; %d not held at the end",
		lapsed, n, leaseDuration, notMine)
	b.ReportMetric(float64(lapsed), "lapsed_leases")
	if rru, items, size, err := e.listCost(b.Context()); err != nil {
		line("one listing of the lease table", "%v", err)
	} else {
		line("one listing of the lease table", "%d items, %.1f read request units (as DynamoDB Local reports them), items of %.0f bytes on average",
			items, rru, size)
	}
}

// runBusy: one process on n shards while -scale.rate records/s are written over them.
func runBusy(b *testing.B, n int) {
	e := newEnv(b, n)
	p := e.startPoller(b, "w1")
	e.waitHeld(b, n, p)
	header(fmt.Sprintf("busy at %d records/s", *rate), n)
	stop := e.write(*rate)
	defer stop()
	sleep(b, *settle)
	e.sink.keepFrom(time.Now())
	s0 := e.snapshot(b, p)
	sleep(b, *window)
	p.alive(b)
	s1 := e.snapshot(b, p)
	written := stop()
	usage(b, s0, s1, n, p)
	deadline := time.Now().Add(2 * time.Minute)
	for e.sink.count() < written && time.Now().Before(deadline) {
		sleep(b, time.Second)
	}
	pct, kept := e.sink.percentiles(0.5, 0.99, 1)
	line("delivered", "%d of %d records written (%d in the window measured)", e.sink.count(), written, kept)
	line("write-to-sink latency", "p50 %d ms, p99 %d ms, max %d ms (of the records delivered within 2 minutes of the last write)",
		pct[0].Milliseconds(), pct[1].Milliseconds(), pct[2].Milliseconds())
	b.ReportMetric(float64(pct[0].Milliseconds()), "p50_ms")
	b.ReportMetric(float64(pct[1].Milliseconds()), "p99_ms")
}

// write puts perSecond records a second, spread over every shard in turn, each carrying its send
// time, until the returned stop is called; stop returns how many were written.
func (e *env) write(perSecond int) (stop func() int) {
	const tick = 10 * time.Millisecond
	quit, done := make(chan struct{}), make(chan int, 1)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		n, start := 0, time.Now()
		for {
			select {
			case <-quit:
				done <- n
				return
			case <-t.C:
			}
			for due := int(time.Since(start).Seconds() * float64(perSecond)); n < due; n++ {
				k := streamstest.S(fmt.Sprintf("k%09d", n))
				e.st.Put(e.shards[n%len(e.shards)], streamstest.Insert(streamstest.Item{"pk": k},
					streamstest.Item{"pk": k, "sent_ns": streamstest.N(time.Now().UnixNano())}))
			}
		}
	}()
	written := -1
	return func() int {
		if written < 0 {
			close(quit)
			written = <-done
		}
		return written
	}
}

// runSigterm: one process holding n leases gets SIGTERM.
func runSigterm(b *testing.B, n int) {
	e := newEnv(b, n)
	p := e.startPoller(b, "w1")
	e.waitHeld(b, n, p)
	sleep(b, *settle)
	header("SIGTERM", n)
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	const limit = 2 * time.Minute
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
		line("exit", "still running %s after SIGTERM: killed", limit)
		b.Fatalf("poller did not exit within %s of SIGTERM", limit)
	}
	took := time.Since(at)
	s, err := e.leaseState(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	line("exit", "%.2f s after SIGTERM, exit code %d", took.Seconds(), p.exitCode())
	line("leases after exit", "%d of %d still owned by the stopped worker", s.owners[p.id], n)
	b.ReportMetric(took.Seconds(), "exit_s")
	b.ReportMetric(float64(p.exitCode()), "exit_code")
}

// runBalance: -scale.replicas processes started together on n shards.
func runBalance(b *testing.B, n int) {
	e := newEnv(b, n)
	ps := make([]*proc, *replicas)
	for i := range ps {
		ps[i] = e.startPoller(b, fmt.Sprintf("r%d", i+1))
	}
	start := ps[0].started
	header(fmt.Sprintf("balance over %d replicas", len(ps)), n)
	var owned, balanced time.Time
	var last leaseState
	s0 := start // when last was listed: a progress line every 30 s
	deadline := time.Now().Add(*startTimeout)
	for balanced.IsZero() {
		if time.Now().After(deadline) {
			b.Fatalf("not balanced %s after start: %v owned, %d free, %d asked for", *startTimeout, last.owners, last.free, last.wanted)
		}
		sleep(b, 3*time.Second)
		for _, p := range ps {
			p.alive(b)
		}
		s, err := e.leaseState(b.Context())
		if err != nil {
			continue // the table may not exist yet
		}
		if time.Since(start)/(30*time.Second) != s0.Sub(start)/(30*time.Second) {
			line(fmt.Sprintf("at %.0f s", time.Since(start).Seconds()), "%d leases, %s", len(s.counter), loads(s, ps))
		}
		last, s0 = s, time.Now()
		if len(s.counter) == n && s.free == 0 && owned.IsZero() {
			owned = time.Now()
		}
		if fair(s, n, ps) {
			balanced = time.Now()
		}
	}
	line("every lease owned", "%.1f s after start", owned.Sub(start).Seconds())
	line("balanced", "%.1f s after start: %s", balanced.Sub(start).Seconds(), loads(last, ps))
	b.ReportMetric(balanced.Sub(start).Seconds(), "balanced_s")
	u0 := e.snapshot(b, ps...)
	sleep(b, *window)
	u1 := e.snapshot(b, ps...)
	after, err := e.leaseState(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	was := map[string]string{}
	for _, l := range last.leases {
		was[l.ShardID] = l.Owner
	}
	moved := 0
	for _, l := range after.leases {
		if was[l.ShardID] != l.Owner {
			moved++
		}
	}
	line("held for the window", "%d leases moved; %s, balanced: %v", moved, loads(after, ps), fair(after, n, ps))
	usage(b, u0, u1, n, ps...)
}

// fair says every lease is owned by one of ps, each holds floor or ceil of n/len(ps), and no lease
// is asked for.
func fair(s leaseState, n int, ps []*proc) bool {
	lo, hi, total := n/len(ps), (n+len(ps)-1)/len(ps), 0
	for _, p := range ps {
		if got := s.owners[p.id]; got < lo || got > hi {
			return false
		}
		total += s.owners[p.id]
	}
	return total == n && s.wanted == 0
}

func loads(s leaseState, ps []*proc) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %d", p.id, s.owners[p.id]))
	}
	return fmt.Sprintf("%s; %d free, %d asked for", strings.Join(parts, ", "), s.free, s.wanted)
}
