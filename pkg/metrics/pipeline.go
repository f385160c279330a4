package metrics

import (
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/poller-dev/poller/pkg/hooks"
)

// Pipeline is one pipeline's view of the metrics: every vector curried with its name once, so no
// call site labels by pipeline. It implements the hooks of package hooks; give it to the pipeline
// (pipeline.Deps.Hooks).
type Pipeline struct {
	name string
	age  *ageCollector

	polled, filteredOut, delivered, bisects, takeovers, finished prometheus.Counter
	trimmed, onFailureErrors, memoryWaits                        prometheus.Counter
	dropped, invocations, getRecords, checkpoints                *prometheus.CounterVec
	renewalFailures, onFailure, throttles                        prometheus.Counter
	skipped                                                      *prometheus.CounterVec
	inFlight, paused                                             prometheus.Gauge
	sinkDuration, latency, renewalRounds                         prometheus.Observer
	leasesOwned, bufferedBytes                                   prometheus.Gauge
}

var _ interface {
	hooks.HookGetRecords
	hooks.HookTrimmed
	hooks.HookMemoryWait
	hooks.HookBufferedBytes
	hooks.HookRecordsPolled
	hooks.HookRecordsFilteredOut
	hooks.HookRecordsDropped
	hooks.HookSinkCall
	hooks.HookRecordsDelivered
	hooks.HookBatchBisected
	hooks.HookOnFailureError
	hooks.HookCheckpoint
	hooks.HookShardStarted
	hooks.HookShardStopped
	hooks.HookIteratorAge
	hooks.HookLeasesOwned
	hooks.HookLeaseTakeover
	hooks.HookLeaseRenewals
	hooks.HookRecordsOnFailure
	hooks.HookRecordsSkipped
	hooks.HookSinkCallStarted
	hooks.HookSinkThrottled
	hooks.HookPipelinePaused
} = (*Pipeline)(nil)

// Pipeline returns the metrics of the pipeline called name, with every documented series present
// from the start, at zero.
func (m *Metrics) Pipeline(name string) *Pipeline {
	l := prometheus.Labels{"pipeline": name}
	p := &Pipeline{
		name: name, age: m.iteratorAge,
		polled: m.RecordsPolled.With(l), filteredOut: m.RecordsFilteredOut.With(l), delivered: m.RecordsDelivered.With(l),
		bisects: m.BatchBisects.With(l), takeovers: m.LeaseTakeovers.With(l), finished: m.ShardsFinished.With(l),
		trimmed: m.RecordsTrimmed.With(l), onFailureErrors: m.OnFailureErrors.With(l), memoryWaits: m.MemoryWaits.With(l),
		dropped: m.RecordsDropped.MustCurryWith(l), invocations: m.SinkInvocations.MustCurryWith(l),
		getRecords: m.GetRecords.MustCurryWith(l), checkpoints: m.Checkpoints.MustCurryWith(l),
		sinkDuration: m.SinkDuration.With(l), latency: m.EndToEndLatency.With(l),
		leasesOwned: m.LeasesOwned.With(l), bufferedBytes: m.BufferedBytes.With(l),
		renewalRounds: m.RenewalRounds.With(l), renewalFailures: m.RenewalFailures.With(l),
		onFailure: m.RecordsOnFailure.With(l), throttles: m.SinkThrottles.With(l), skipped: m.RecordsSkipped.MustCurryWith(l),
		inFlight: m.SinkInFlight.With(l), paused: m.PipelinePaused.With(l),
	}
	p.skipped.WithLabelValues(hooks.SkippedBeforeStart)
	for _, r := range []string{hooks.ResultOK, hooks.ResultThrottled, hooks.ResultError} {
		p.getRecords.WithLabelValues(r)
	}
	for _, r := range []string{hooks.DroppedMaxAge, hooks.DroppedRetriesExhausted} {
		p.dropped.WithLabelValues(r)
	}
	for _, r := range []string{hooks.ResultOK, hooks.ResultPartial, hooks.ResultError} {
		p.invocations.WithLabelValues(r)
	}
	return p
}

// OnGetRecords counts poller_getrecords_total{result}.
func (p *Pipeline) OnGetRecords(_, result string) { p.getRecords.WithLabelValues(result).Inc() }

// OnTrimmed counts poller_trimmed_positions_total.
func (p *Pipeline) OnTrimmed(string) { p.trimmed.Inc() }

// OnMemoryWait counts poller_memory_waits_total.
func (p *Pipeline) OnMemoryWait(string) { p.memoryWaits.Inc() }

// OnBufferedBytes moves poller_buffered_bytes.
func (p *Pipeline) OnBufferedBytes(delta int64) { p.bufferedBytes.Add(float64(delta)) }

// OnRecordsPolled counts poller_records_polled_total.
func (p *Pipeline) OnRecordsPolled(_ string, n int) { p.polled.Add(float64(n)) }

// OnRecordsFilteredOut counts poller_records_filtered_out_total.
func (p *Pipeline) OnRecordsFilteredOut(_ string, n int) { p.filteredOut.Add(float64(n)) }

// OnRecordsDropped counts poller_records_dropped_total{reason}.
func (p *Pipeline) OnRecordsDropped(_, reason string, n int) {
	p.dropped.WithLabelValues(reason).Add(float64(n))
}

// OnSinkCallStarted adds the call to poller_sink_in_flight.
func (p *Pipeline) OnSinkCallStarted(string) { p.inFlight.Inc() }

// OnSinkCall counts poller_sink_invocations_total{result}, observes poller_sink_duration_seconds and
// takes the call out of poller_sink_in_flight.
func (p *Pipeline) OnSinkCall(_, result string, took time.Duration, _ error) {
	p.inFlight.Dec()
	p.invocations.WithLabelValues(result).Inc()
	p.sinkDuration.Observe(took.Seconds())
}

// OnRecordsDelivered counts poller_records_delivered_total and observes each record's
// poller_end_to_end_latency_seconds.
func (p *Pipeline) OnRecordsDelivered(_ string, recs []events.DynamoDBEventRecord) {
	p.delivered.Add(float64(len(recs)))
	now := time.Now()
	for i := range recs {
		// A record without a creation time has the epoch (or the zero time): its latency is unknown.
		if t := recs[i].Change.ApproximateCreationDateTime.Time; t.Unix() > 0 {
			p.latency.Observe(now.Sub(t).Seconds())
		}
	}
}

// OnBatchBisected counts poller_batch_bisects_total.
func (p *Pipeline) OnBatchBisected(string) { p.bisects.Inc() }

// OnOnFailureError counts poller_on_failure_errors_total.
func (p *Pipeline) OnOnFailureError(string, error) { p.onFailureErrors.Inc() }

// OnCheckpoint counts poller_checkpoints_total{result}.
func (p *Pipeline) OnCheckpoint(_, result string) { p.checkpoints.WithLabelValues(result).Inc() }

// OnShardStarted adds the shard to poller_iterator_age_seconds, caught up until told otherwise.
func (p *Pipeline) OnShardStarted(shardID string) { p.age.track(p.name, shardID) }

// OnShardStopped removes the shard from poller_iterator_age_seconds and counts
// poller_shards_finished_total for a finished shard.
func (p *Pipeline) OnShardStopped(shardID string, finished bool) {
	p.age.untrack(p.name, shardID)
	if finished {
		p.finished.Inc()
	}
}

// OnIteratorAge sets the shard's part of poller_iterator_age_seconds.
func (p *Pipeline) OnIteratorAge(shardID string, since time.Time) {
	if a := p.age.get(p.name, shardID); a != nil {
		a.set(since)
	}
}

// OnLeasesOwned sets poller_leases_owned.
func (p *Pipeline) OnLeasesOwned(n int) { p.leasesOwned.Set(float64(n)) }

// OnLeaseTakeover counts poller_lease_takeovers_total.
func (p *Pipeline) OnLeaseTakeover(string) { p.takeovers.Inc() }

// OnLeaseRenewals observes poller_lease_renewal_round_seconds and counts
// poller_lease_renewal_failures_total.
func (p *Pipeline) OnLeaseRenewals(took time.Duration, failed int) {
	p.renewalRounds.Observe(took.Seconds())
	p.renewalFailures.Add(float64(failed))
}

// OnSinkThrottled counts poller_sink_throttles_total.
func (p *Pipeline) OnSinkThrottled(string) { p.throttles.Inc() }

// OnRecordsOnFailure counts poller_records_on_failure_total.
func (p *Pipeline) OnRecordsOnFailure(_ string, n int) { p.onFailure.Add(float64(n)) }

// OnRecordsSkipped counts poller_records_skipped_total{reason}.
func (p *Pipeline) OnRecordsSkipped(_, reason string, n int) {
	p.skipped.WithLabelValues(reason).Add(float64(n))
}

// OnPipelinePaused sets poller_pipeline_paused to 1 or 0.
func (p *Pipeline) OnPipelinePaused(paused bool) {
	if paused {
		p.paused.Set(1)
	} else {
		p.paused.Set(0)
	}
}
