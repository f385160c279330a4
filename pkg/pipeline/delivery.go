package pipeline

import (
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/wait"
)

// Backoff of a failing sink call or on_failure report: 200 ms doubling to 30 s, with jitter (each
// wait is drawn from the upper half of its step). Lambda does not document its pacing.
const (
	retryBackoffBase = 200 * time.Millisecond
	retryBackoffMax  = 30 * time.Second
)

// streamRetention is how long DynamoDB Streams keeps a record: the age at which max_record_age -1
// ("until the record expires") discards it, with RecordAgeExceeded.
const streamRetention = 24 * time.Hour

// newPolicy builds the delivery policy from the pipeline's failure knobs. It calls the sink and the
// destination unfenced: each shard worker delivers through shardPolicy.
func (p *Pipeline) newPolicy(deps Deps) *dispatch.Policy {
	m, name, cfg := deps.Metrics, p.Name, p.Config
	maxAge, limited := cfg.MaxRecordAge.Limit()
	if !limited {
		// Lambda's -1 means "until the record expires": the stream trims records after 24 hours.
		// Without this bound a poison record would block its shard, and every shard after it in
		// the lineage, forever; past it the record is gone from the stream anyway.
		maxAge = streamRetention
	}
	pol := &dispatch.Policy{
		Sink:                    deps.Sink,
		MaxRetryAttempts:        cfg.MaxRetryAttempts,
		MaxRecordAge:            maxAge,
		BisectOnError:           cfg.BisectBatchOnError,
		ReportBatchItemFailures: cfg.ReportBatchItemFailures,
		Backoff:                 wait.Backoff(retryBackoffBase, retryBackoffMax),
		Counters: dispatch.PolicyCounters{
			Invoked: func(result string, took time.Duration) {
				m.SinkInvocations.WithLabelValues(name, result).Inc()
				m.SinkDuration.WithLabelValues(name).Observe(took.Seconds())
			},
			Delivered: p.delivered,
			Dropped: func(reason string, n int) {
				m.RecordsDropped.WithLabelValues(name, reason).Add(float64(n))
			},
			Bisected:     func() { m.BatchBisects.WithLabelValues(name).Inc() },
			ReportFailed: func() { m.OnFailureErrors.WithLabelValues(name).Inc() },
		},
		Log: p.Log,
	}
	if deps.OnFailure != nil { // keep the field a nil interface without a destination
		pol.OnFailure = deps.OnFailure
	}
	for _, r := range []string{"ok", "partial", "error"} {
		m.SinkInvocations.WithLabelValues(name, r)
	}
	return pol
}

// shardPolicy is the pipeline's policy for one shard worker: every sink call and on_failure report
// first passes the shard's fence.
func (p *Pipeline) shardPolicy(f *fence) *dispatch.Policy {
	pol := *p.policy
	pol.Sink = fencedSink{Sink: pol.Sink, fence: f}
	if pol.OnFailure != nil {
		pol.OnFailure = fencedDestination{Destination: pol.OnFailure, fence: f}
	}
	return &pol
}

// delivered counts records a sink accepted and their end-to-end latency.
func (p *Pipeline) delivered(recs []events.DynamoDBEventRecord) {
	m := p.Metrics
	m.RecordsDelivered.WithLabelValues(p.Name).Add(float64(len(recs)))
	now := time.Now()
	h := m.EndToEndLatency.WithLabelValues(p.Name)
	for i := range recs {
		// A record without a creation time has the epoch (or the zero time): its latency is unknown.
		if t := recs[i].Change.ApproximateCreationDateTime.Time; t.Unix() > 0 {
			h.Observe(now.Sub(t).Seconds())
		}
	}
}
