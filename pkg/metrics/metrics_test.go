package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestIteratorAgeIsTheLargestOverAPipelinesShards(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	p, q := m.Pipeline("p"), m.Pipeline("q")
	for _, s := range []string{"shard-a", "shard-b"} {
		p.OnShardStarted(s)
	}
	q.OnShardStarted("shard-c")
	defer q.OnShardStopped("shard-c", false)
	now := time.Now()
	p.OnIteratorAge("shard-a", now.Add(-5*time.Second))
	p.OnIteratorAge("shard-b", now.Add(-90*time.Second))
	q.OnIteratorAge("shard-c", time.Time{}) // caught up

	age := func(pipeline string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "poller_iterator_age_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == pipeline {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no poller_iterator_age_seconds for pipeline %s", pipeline)
		return 0
	}
	if got := age("p"); got < 90 || got > 100 {
		t.Errorf("age(p) = %v, want about 90 (the older of its two shards)", got)
	}
	if got := age("q"); got != 0 {
		t.Errorf("age(q) = %v, want 0 for a caught-up shard", got)
	}
	p.OnShardStopped("shard-b", false)
	if got := age("p"); got < 5 || got > 15 {
		t.Errorf("age(p) after its oldest shard stopped = %v, want about 5", got)
	}
	p.OnShardStopped("shard-a", true)
}

func TestEveryContractMetricIsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	// Touch each vector once so it is gathered.
	m.RecordsPolled.WithLabelValues("p")
	m.RecordsFilteredOut.WithLabelValues("p")
	m.RecordsDelivered.WithLabelValues("p")
	m.RecordsDropped.WithLabelValues("p", "max_age")
	m.SinkInvocations.WithLabelValues("p", "ok")
	m.SinkDuration.WithLabelValues("p").Observe(0.1)
	m.BatchBisects.WithLabelValues("p")
	m.GetRecords.WithLabelValues("p", "ok")
	m.LeasesOwned.WithLabelValues("p")
	m.LeaseTakeovers.WithLabelValues("p")
	m.Checkpoints.WithLabelValues("p", "ok")
	m.EndToEndLatency.WithLabelValues("p").Observe(0.1)
	m.Pipeline("p").OnShardStarted("s")
	m.Pipeline("p").OnLeaseRenewals(time.Second, 0)
	m.SetVersion("v1.0.0")
	names := []string{"poller_records_polled_total", "poller_records_filtered_out_total", "poller_records_delivered_total",
		"poller_records_dropped_total", "poller_sink_invocations_total", "poller_sink_duration_seconds", "poller_batch_bisects_total",
		"poller_getrecords_total", "poller_iterator_age_seconds", "poller_leases_owned", "poller_lease_takeovers_total",
		"poller_checkpoints_total", "poller_end_to_end_latency_seconds",
		"poller_lease_renewal_round_seconds", "poller_lease_renewal_failures_total",
		"poller_records_on_failure_total", "poller_records_skipped_total", "poller_sink_throttles_total",
		"poller_sink_in_flight", "poller_pipeline_paused", "poller_build_info"}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range names {
		if !got[name] {
			t.Errorf("documented metric %s is not gathered", name)
		}
	}
}
