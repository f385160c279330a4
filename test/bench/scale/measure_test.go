package scale

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/streamstest"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU time (user + system) process pid used so far; pid 0 is the whole machine's
// busy time (all but idle and iowait, over every core).
func cpuTime(pid int) (time.Duration, error) {
	if pid == 0 {
		return machineBusy()
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// Fields after the command name (which may hold spaces, inside parentheses): state is the
	// third field of the line, utime the 14th and stime the 15th.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * clockTick, nil
}

// memory returns VmRSS and VmHWM of process pid, in MiB.
func memory(pid int) (rss, hwm float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm, nil
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// ops are the calls counted at the endpoint: the Streams API, and the lease table's calls that it
// passes on to DynamoDB Local.
var ops = []streamstest.Op{streamstest.OpGetRecords, streamstest.OpGetShardIterator, streamstest.OpDescribeStream,
	"Query", "UpdateItem", "PutItem", "DeleteItem", "GetItem", "BatchWriteItem", "TransactWriteItems", "Scan"}

// snapshot is what a window's figures are differences of.
type snapshot struct {
	at      time.Time
	calls   map[streamstest.Op]int
	cpu     map[int]time.Duration // per pid; 0 is the machine, and os.Getpid() the harness (endpoint, sink)
	metrics map[string]float64    // per process: its /metrics, summed over labels
}

// metricNames are read from /metrics (summed over their labels; a missing series reads -1).
var metricNames = []string{"poller_getrecords_total", "poller_lease_renewal_round_seconds_sum",
	"poller_lease_renewal_round_seconds_count", "poller_lease_renewal_failures_total", "poller_records_delivered_total",
	"poller_end_to_end_latency_seconds_sum", "poller_end_to_end_latency_seconds_count", "poller_leases_owned", "poller_poll_slowdown"}

func (e *env) snapshot(b *testing.B, ps ...*proc) snapshot {
	b.Helper()
	s := snapshot{at: time.Now(), calls: map[streamstest.Op]int{}, cpu: map[int]time.Duration{}, metrics: map[string]float64{}}
	for _, op := range ops {
		s.calls[op] = e.srv.Calls(op)
	}
	for _, pid := range append([]int{0, os.Getpid()}, pids(ps)...) {
		t, err := cpuTime(pid)
		if err != nil {
			b.Fatal(err)
		}
		s.cpu[pid] = t
	}
	for _, p := range ps {
		m, err := scrape(p.metrics)
		if err != nil {
			b.Fatalf("poller %s: %v", p.id, err)
		}
		for _, name := range metricNames {
			s.metrics[p.id+" "+name] = m.get(name)
		}
		s.metrics[p.id+" renewal_max"] = m.highestBucket("poller_lease_renewal_round_seconds_bucket")
	}
	return s
}

func pids(ps []*proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// exposition is a /metrics page: each series line's name with labels, and its value.
type exposition map[string]float64

func scrape(url string) (exposition, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	m := exposition{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); i > 0 && err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// get sums the series called name over their labels; -1 if there is none.
func (m exposition) get(name string) float64 {
	sum, found := 0.0, false
	for series, v := range m {
		if base, _, _ := strings.Cut(series, "{"); base == name {
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// highestBucket returns the smallest bucket bound of histogram bucket series name that holds every
// observation (an upper bound of the largest); -1 without observations or the series.
func (m exposition) highestBucket(name string) float64 {
	total := m.get(strings.TrimSuffix(name, "_bucket") + "_count")
	best := -1.0
	for series, v := range m {
		base, labels, _ := strings.Cut(series, "{")
		_, le, ok := strings.Cut(labels, `le="`)
		if base != name || !ok || total <= 0 || v < total {
			continue
		}
		le, _, _ = strings.Cut(le, `"`)
		if bound, err := strconv.ParseFloat(le, 64); err == nil && (best < 0 || bound < best) {
			best = bound
		}
	}
	return best
}

// sink is an http sink that counts records and the latency of those that carry sent_ns (the
// writer's clock is the sink's: one machine). It scans the event's bytes instead of decoding it,
// to stay cheap beside the poller.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	n       int
	latency []time.Duration
	since   time.Time // latencies of records sent before are not kept
}

func newSink(b *testing.B) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(s)
	b.Cleanup(s.srv.Close)
	return s
}

var sentMarker = []byte(`"sent_ns":{"N":"`)

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	n := bytes.Count(body, []byte(`"eventSource":"aws:dynamodb"`))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += n
	for rest := body; ; {
		i := bytes.Index(rest, sentMarker)
		if i < 0 {
			break
		}
		rest = rest[i+len(sentMarker):]
		end := bytes.IndexByte(rest, '"')
		ns, err := strconv.ParseInt(string(rest[:max(end, 0)]), 10, 64)
		if sent := time.Unix(0, ns); err == nil && !sent.Before(s.since) && !s.since.IsZero() {
			s.latency = append(s.latency, now.Sub(sent))
		}
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// keepFrom keeps the latency of records sent from t on.
func (s *sink) keepFrom(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since, s.latency = t, nil
}

// percentiles returns the p-th latencies (0..1) of the records kept.
func (s *sink) percentiles(ps ...float64) ([]time.Duration, int) {
	s.mu.Lock()
	lat := slices.Clone(s.latency)
	s.mu.Unlock()
	slices.Sort(lat)
	out := make([]time.Duration, len(ps))
	if len(lat) == 0 {
		return out, 0
	}
	for i, p := range ps {
		out[i] = lat[int(p*float64(len(lat)-1))]
	}
	return out, len(lat)
}
