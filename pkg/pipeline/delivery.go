package pipeline

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/dispatch"
	"github.com/poller-dev/poller/pkg/shards"
	"github.com/poller-dev/poller/pkg/sinks"
)

// deliverer delivers one batch under the pipeline's failure policy (see dispatch.DeliverFunc).
type deliverer interface {
	Deliver(ctx context.Context, stop <-chan struct{}, b sinks.Batch) error
}

// newPolicy builds the delivery policy from the pipeline's failure knobs.
func (p *Pipeline) newPolicy(deps Deps) deliverer {
	m, name := deps.Metrics, p.Name
	return &dispatch.Policy{
		Sink:    deps.Sink,
		Backoff: shards.Backoff(200*time.Millisecond, 30*time.Second),
		Counters: dispatch.PolicyCounters{
			Invoked: func(result string, took time.Duration) {
				m.SinkInvocations.WithLabelValues(name, result).Inc()
				m.SinkDuration.WithLabelValues(name).Observe(took.Seconds())
			},
			Delivered: p.delivered,
		},
		Log: p.Log,
	}
}

// delivered counts records a sink accepted and their end-to-end latency.
func (p *Pipeline) delivered(recs []events.DynamoDBEventRecord) {
	m := p.Metrics
	m.RecordsDelivered.WithLabelValues(p.Name).Add(float64(len(recs)))
	now := time.Now()
	h := m.EndToEndLatency.WithLabelValues(p.Name)
	for i := range recs {
		if t := recs[i].Change.ApproximateCreationDateTime.Time; !t.IsZero() {
			h.Observe(now.Sub(t).Seconds())
		}
	}
}
