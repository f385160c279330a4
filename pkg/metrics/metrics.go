// Package metrics defines poller's Prometheus metrics, as the README lists them: the Prometheus
// implementation of the pipeline hooks (package hooks). Every metric is labelled with the pipeline;
// each pipeline gets a view of its own (Metrics.Pipeline) with every vector curried with its name
// once. Metrics are registered on an injected Registerer, never the global one: pkg/service
// registers them on the registry that pkg/server serves at /metrics.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every collector, labelled by pipeline; each field is one series of the README's list,
// exported for tests and for programs that read them. Each pipeline reports to its own view,
// Pipeline(name), which implements the pipeline's hooks (package hooks).
type Metrics struct {
	RecordsPolled      *prometheus.CounterVec   // poller_records_polled_total
	RecordsFilteredOut *prometheus.CounterVec   // poller_records_filtered_out_total
	RecordsDelivered   *prometheus.CounterVec   // poller_records_delivered_total
	RecordsDropped     *prometheus.CounterVec   // poller_records_dropped_total{reason = max_age | retries_exhausted | malformed | too_large}
	RecordsTrimmed     *prometheus.CounterVec   // poller_trimmed_positions_total: positions lost to the stream's 24 h trimming
	SinkInvocations    *prometheus.CounterVec   // poller_sink_invocations_total{result = ok | error | partial}
	SinkDuration       *prometheus.HistogramVec // poller_sink_duration_seconds
	BatchBisects       *prometheus.CounterVec   // poller_batch_bisects_total
	GetRecords         *prometheus.CounterVec   // poller_getrecords_total{result = ok | throttled | error}
	LeasesOwned        *prometheus.GaugeVec     // poller_leases_owned
	LeaseTakeovers     *prometheus.CounterVec   // poller_lease_takeovers_total
	Checkpoints        *prometheus.CounterVec   // poller_checkpoints_total{result = ok | lost | error}
	EndToEndLatency    *prometheus.HistogramVec // poller_end_to_end_latency_seconds
	ShardsFinished     *prometheus.CounterVec   // poller_shards_finished_total
	OnFailureErrors    *prometheus.CounterVec   // poller_on_failure_errors_total: failed attempts to store a report in on_failure
	BufferedBytes      *prometheus.GaugeVec     // poller_buffered_bytes: bytes of records read and not yet done (memory budget)
	MemoryWaits        *prometheus.CounterVec   // poller_memory_waits_total: GetRecords calls held back by the memory budget
	RenewalRounds      *prometheus.HistogramVec // poller_lease_renewal_round_seconds: how long renewing every lease held took
	RenewalFailures    *prometheus.CounterVec   // poller_lease_renewal_failures_total: renewals that failed or timed out
	RecordsOnFailure   *prometheus.CounterVec   // poller_records_on_failure_total: discarded records stored by the on_failure destination
	RecordsSkipped     *prometheus.CounterVec   // poller_records_skipped_total{reason = before_start}
	SinkThrottles      *prometheus.CounterVec   // poller_sink_throttles_total: sink calls refused before the handler ran
	SinkInFlight       *prometheus.GaugeVec     // poller_sink_in_flight: sink calls in flight
	PipelinePaused     *prometheus.GaugeVec     // poller_pipeline_paused: 1 while the pipeline is paused, else 0
	BuildInfo          *prometheus.GaugeVec     // poller_build_info{version, goversion}: 1 (see SetVersion)
	PollSlowdown       prometheus.Gauge         // poller_poll_slowdown: how many times the poll waits are stretched (1: as configured)

	iteratorAge *ageCollector
}

// New creates the metrics and registers them on reg. It panics if reg already holds them (a
// programming error): one Metrics serves every pipeline of a process.
func New(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"pipeline"}, labels...))
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{"pipeline"})
	}
	m := &Metrics{
		RecordsPolled:      counter("poller_records_polled_total", "Stream records read with GetRecords."),
		RecordsFilteredOut: counter("poller_records_filtered_out_total", "Records that matched no filter pattern and were skipped."),
		RecordsDelivered:   counter("poller_records_delivered_total", "Records a sink accepted."),
		RecordsDropped:     counter("poller_records_dropped_total", "Records discarded (sent to on_failure) by reason.", "reason"),
		RecordsTrimmed:     counter("poller_trimmed_positions_total", "Times a shard's position was trimmed from the stream and reading restarted at TRIM_HORIZON (records lost to retention)."),
		SinkInvocations:    counter("poller_sink_invocations_total", "Sink calls by result.", "result"),
		SinkDuration: histogram("poller_sink_duration_seconds", "Duration of sink calls.",
			prometheus.ExponentialBuckets(0.001, 2, 16)),
		BatchBisects:   counter("poller_batch_bisects_total", "Failed batches split in two (bisect_batch_on_error)."),
		GetRecords:     counter("poller_getrecords_total", "GetRecords calls by result.", "result"),
		LeasesOwned:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "poller_leases_owned", Help: "Shard leases this worker holds."}, []string{"pipeline"}),
		LeaseTakeovers: counter("poller_lease_takeovers_total", "Leases this worker took from another (expired or stolen)."),
		Checkpoints:    counter("poller_checkpoints_total", "Checkpoint writes by result.", "result"),
		EndToEndLatency: histogram("poller_end_to_end_latency_seconds", "From a record's ApproximateCreationDateTime to its successful delivery.",
			prometheus.ExponentialBuckets(0.05, 2, 14)),
		ShardsFinished: counter("poller_shards_finished_total", "Shards read and delivered to their end."),
		OnFailureErrors: counter("poller_on_failure_errors_total",
			"Failed attempts to store a discarded batch in the on_failure destination; its shard waits and retries meanwhile."),
		BufferedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "poller_buffered_bytes",
			Help: "Bytes of records read and not yet done (event JSON size), counted against memory.max_buffered_bytes."}, []string{"pipeline"}),
		MemoryWaits: counter("poller_memory_waits_total",
			"GetRecords calls held back until the shard's or the process's memory budget allowed them."),
		RenewalRounds: histogram("poller_lease_renewal_round_seconds", "How long a round of lease renewals (every lease held) took.",
			prometheus.ExponentialBuckets(0.005, 2, 13)),
		RenewalFailures: counter("poller_lease_renewal_failures_total",
			"Lease renewals that failed or timed out (retried at the next round; not leases found taken)."),
		iteratorAge: &ageCollector{shards: map[string]map[string]*shardAge{}},
	}
	m.addOperations(counter)
	reg.MustRegister(m.RecordsPolled, m.RecordsFilteredOut, m.RecordsDelivered, m.RecordsDropped, m.RecordsTrimmed,
		m.SinkInvocations, m.SinkDuration, m.BatchBisects, m.GetRecords, m.LeasesOwned, m.LeaseTakeovers,
		m.Checkpoints, m.EndToEndLatency, m.ShardsFinished, m.OnFailureErrors, m.iteratorAge,
		m.BufferedBytes, m.MemoryWaits, m.RenewalRounds, m.RenewalFailures,
		m.RecordsOnFailure, m.RecordsSkipped, m.SinkThrottles, m.SinkInFlight, m.PipelinePaused, m.BuildInfo, m.PollSlowdown)
	return m
}

// addOperations creates the metrics an operator moving off Lambda looks for first (Throttles,
// ConcurrentExecutions, OnFailureDestinationDeliveredEventCount, a paused mapping) and the build.
func (m *Metrics) addOperations(counter func(name, help string, labels ...string) *prometheus.CounterVec) {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m.RecordsOnFailure = counter("poller_records_on_failure_total",
		"Discarded records the on_failure destination stored (Lambda's OnFailureDestinationDeliveredEventCount).")
	m.RecordsSkipped = counter("poller_records_skipped_total",
		"Records read and checkpointed past without delivery on purpose, by reason (before_start: created before the AT_TIMESTAMP start).", "reason")
	m.SinkThrottles = counter("poller_sink_throttles_total",
		"Sink calls refused before the handler ran (HTTP 429, refused connection, a throttle the sink reported); retried without using up max_retry_attempts.")
	m.SinkInFlight = gauge("poller_sink_in_flight", "Sink calls in flight (Lambda's ConcurrentExecutions).", "pipeline")
	m.PipelinePaused = gauge("poller_pipeline_paused", "1 while the pipeline is paused (poller pause, or enabled: false), else 0.", "pipeline")
	m.PollSlowdown = prometheus.NewGauge(prometheus.GaugeOpts{Name: "poller_poll_slowdown",
		Help: "How many times this process stretches its shards' poll waits because its lease renewals fall behind (1: the configured cadence)."})
	m.BuildInfo = gauge("poller_build_info", "Always 1; the labels give poller's version and the Go version it was built with.", "version", "goversion")
}

// SetVersion sets poller_build_info to 1 for version (and the running Go version), the only series.
func (m *Metrics) SetVersion(version string) {
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
}

// shardAge is one shard's contribution to poller_iterator_age_seconds.
type shardAge struct {
	mu sync.Mutex
	// since is the creation time the shard's age is measured from (see hooks.HookIteratorAge);
	// zero when caught up.
	since time.Time
}

func (a *shardAge) set(t time.Time) {
	a.mu.Lock()
	a.since = t
	a.mu.Unlock()
}

func (a *shardAge) age(now time.Time) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.since.IsZero() {
		return 0
	}
	return max(0, now.Sub(a.since).Seconds())
}

// ageCollector exports poller_iterator_age_seconds: per pipeline, the largest iterator age over the
// shards this worker reads, as Lambda's IteratorAge, where a shard's age is that of its oldest record
// not yet done.
type ageCollector struct {
	mu     sync.Mutex
	shards map[string]map[string]*shardAge // pipeline -> shard -> age
}

var iteratorAgeDesc = prometheus.NewDesc("poller_iterator_age_seconds",
	"Largest age of the oldest record not yet done (read, but not yet delivered, filtered out or discarded), over the shards this worker reads (Lambda's IteratorAge); a shard stuck retrying shows its true age.", []string{"pipeline"}, nil)

// track adds a shard to its pipeline's gauge, at age 0, and returns its age.
func (c *ageCollector) track(pipeline, shard string) *shardAge {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards[pipeline] == nil {
		c.shards[pipeline] = map[string]*shardAge{}
	}
	a := &shardAge{}
	c.shards[pipeline][shard] = a
	return a
}

// get returns a tracked shard's age, nil if the shard is not tracked.
func (c *ageCollector) get(pipeline, shard string) *shardAge {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shards[pipeline][shard]
}

func (c *ageCollector) untrack(pipeline, shard string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.shards[pipeline], shard)
}

func (c *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- iteratorAgeDesc }

func (c *ageCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, shards := range c.shards {
		var worst float64
		for _, a := range shards {
			worst = max(worst, a.age(now))
		}
		ch <- prometheus.MustNewConstMetric(iteratorAgeDesc, prometheus.GaugeValue, worst, p)
	}
}
