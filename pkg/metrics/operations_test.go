package metrics

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poller-dev/poller/pkg/hooks"
)

// TestOperationsMetricsFollowTheirHooks: each metric an operator moving off Lambda looks for moves
// with its hook, in the pipeline's series only.
func TestOperationsMetricsFollowTheirHooks(t *testing.T) {
	tests := []struct {
		name   string
		do     func(p *Pipeline)
		metric func(m *Metrics) prometheus.Collector
		want   float64
	}{
		{name: "records stored by on_failure are counted",
			do:     func(p *Pipeline) { p.OnRecordsOnFailure("s", 3); p.OnRecordsOnFailure("s", 2) },
			metric: func(m *Metrics) prometheus.Collector { return m.RecordsOnFailure.WithLabelValues("p") }, want: 5},
		{name: "records skipped before the start are counted by reason",
			do:     func(p *Pipeline) { p.OnRecordsSkipped("s", hooks.SkippedBeforeStart, 7) },
			metric: func(m *Metrics) prometheus.Collector { return m.RecordsSkipped.WithLabelValues("p", "before_start") }, want: 7},
		{name: "throttled sink calls are counted",
			do:     func(p *Pipeline) { p.OnSinkThrottled("s"); p.OnSinkThrottled("s") },
			metric: func(m *Metrics) prometheus.Collector { return m.SinkThrottles.WithLabelValues("p") }, want: 2},
		{name: "sink calls started and not ended are in flight",
			do: func(p *Pipeline) {
				p.OnSinkCallStarted("s")
				p.OnSinkCallStarted("t")
				p.OnSinkCallStarted("s")
				p.OnSinkCall("s", hooks.ResultError, time.Second, errors.New("500"))
			},
			metric: func(m *Metrics) prometheus.Collector { return m.SinkInFlight.WithLabelValues("p") }, want: 2},
		{name: "a paused pipeline is 1",
			do:     func(p *Pipeline) { p.OnPipelinePaused(true) },
			metric: func(m *Metrics) prometheus.Collector { return m.PipelinePaused.WithLabelValues("p") }, want: 1},
		{name: "a resumed pipeline is 0 again",
			do:     func(p *Pipeline) { p.OnPipelinePaused(true); p.OnPipelinePaused(false) },
			metric: func(m *Metrics) prometheus.Collector { return m.PipelinePaused.WithLabelValues("p") }, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(prometheus.NewRegistry())
			m.Pipeline("other")
			tt.do(m.Pipeline("p"))
			if got := testutil.ToFloat64(tt.metric(m)); got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
			if got := testutil.ToFloat64(m.SinkThrottles.WithLabelValues("other")) + testutil.ToFloat64(m.RecordsOnFailure.WithLabelValues("other")); got != 0 {
				t.Errorf("another pipeline's series moved to %v, want 0", got)
			}
		})
	}
}

func TestBuildInfoIsOneSeriesForTheVersionSet(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SetVersion("v0.0.1")
	m.SetVersion("v1.2.3")
	if got := testutil.CollectAndCount(m.BuildInfo); got != 1 {
		t.Fatalf("poller_build_info has %d series, want 1", got)
	}
	if got := testutil.ToFloat64(m.BuildInfo.WithLabelValues("v1.2.3", runtime.Version())); got != 1 {
		t.Errorf("poller_build_info{version=v1.2.3,goversion=%s} = %v, want 1", runtime.Version(), got)
	}
}
