package pipeline

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
	"github.com/poller-dev/poller/pkg/metrics"
)

func TestPolicyRecordAge(t *testing.T) {
	tests := []struct {
		name string
		age  config.RecordAge
		want time.Duration
	}{
		{name: "max_record_age -1 ends retries when the stream would trim the record", age: config.NoLimit, want: 24 * time.Hour},
		{name: "a set max_record_age is used as given", age: config.RecordAge(90 * time.Second), want: 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.DefaultPipeline()
			cfg.Name, cfg.Source.StreamARN, cfg.MaxRecordAge = "p", "arn:aws:dynamodb:us-east-1:1:table/T/stream/x", tt.age
			p, err := New(cfg, Deps{Streams: noStreams{}, Store: noStore{}, Sink: replicaSink{&sharedSink{}, "a"},
				Hooks: []hooks.Hook{metrics.New(prometheus.NewRegistry()).Pipeline(cfg.Name)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.policy.MaxRecordAge; got != tt.want {
				t.Errorf("MaxRecordAge = %s, want %s", got, tt.want)
			}
		})
	}
}

// noStreams and noStore satisfy New's dependencies for tests that never run the pipeline: any call
// panics (the embedded interfaces are nil), so an unexpected one fails loudly.
type noStreams struct{ StreamsAPI }

type noStore struct{ LeaseStore }
