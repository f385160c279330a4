package pipeline

import (
	"time"

	"github.com/poller-dev/poller/pkg/failure"
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
func (p *Pipeline) newPolicy(deps Deps) *failure.Policy {
	cfg := p.Config
	maxAge, limited := cfg.MaxRecordAge.Limit()
	if !limited {
		// Lambda's -1 means "until the record expires": the stream trims records after 24 hours.
		// Without this bound a poison record would block its shard, and every shard after it in
		// the lineage, forever; past it the record is gone from the stream anyway.
		maxAge = streamRetention
	}
	pol := &failure.Policy{
		Sink:                    deps.Sink,
		MaxRetryAttempts:        cfg.MaxRetryAttempts,
		MaxRecordAge:            maxAge,
		BisectOnError:           cfg.BisectBatchOnError,
		ReportBatchItemFailures: cfg.ReportBatchItemFailures,
		Backoff:                 wait.Backoff(retryBackoffBase, retryBackoffMax),
		Hooks:                   p.hooks,
		Log:                     p.Log,
	}
	if deps.OnFailure != nil { // keep the field a nil interface without a destination
		pol.OnFailure = deps.OnFailure
	}
	return pol
}

// shardPolicy is the pipeline's policy for one shard worker: every sink call and on_failure report
// first passes the shard's fence.
func (p *Pipeline) shardPolicy(f *fence) *failure.Policy {
	pol := *p.policy
	pol.Sink = fencedSink{Sink: pol.Sink, fence: f}
	if pol.OnFailure != nil {
		pol.OnFailure = fencedDestination{Destination: pol.OnFailure, fence: f}
	}
	return &pol
}
