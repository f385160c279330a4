package scale

import (
	"reflect"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	tests := []struct {
		name, in string
		want     []scenario
		wantErr  bool
	}{
		{name: "a list of scenarios with their shard counts", in: "idle/100, busy/1000,balance/10000",
			want: []scenario{{"idle", 100}, {"busy", 1000}, {"balance", 10000}}},
		{name: "a scenario without shards is refused", in: "idle", wantErr: true},
		{name: "an unknown scenario is refused", in: "soak/10", wantErr: true},
		{name: "zero shards are refused", in: "sigterm/0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseScenarios(tt.in)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseScenarios(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestExpositionSumsLabelsAndBoundsTheLargestObservation(t *testing.T) {
	m := exposition{
		`poller_getrecords_total{pipeline="a",result="ok"}`:                   10,
		`poller_getrecords_total{pipeline="a",result="error"}`:                2,
		`poller_lease_renewal_round_seconds_bucket{pipeline="a",le="0.04"}`:   1,
		`poller_lease_renewal_round_seconds_bucket{pipeline="a",le="0.08"}`:   3,
		`poller_lease_renewal_round_seconds_bucket{pipeline="a",le="0.16"}`:   3,
		`poller_lease_renewal_round_seconds_bucket{pipeline="a",le="+Inf"}`:   3,
		`poller_lease_renewal_round_seconds_count{pipeline="a"}`:              3,
		`poller_lease_renewal_round_seconds_sum{pipeline="a"}`:                0.15,
		`poller_lease_renewal_round_seconds_sum_other_name{pipeline="a"}`:     99,
		`poller_lease_renewal_failures_total_not_this_one{pipeline="a"}`:      99,
		`poller_lease_renewal_round_seconds_bucket{pipeline="b_missing"} bad`: 0,
	}
	if got := m.get("poller_getrecords_total"); got != 12 {
		t.Errorf("get(poller_getrecords_total) = %v, want 12 (summed over results)", got)
	}
	if got := m.get("poller_lease_renewal_failures_total"); got != -1 {
		t.Errorf("get of a missing series = %v, want -1", got)
	}
	if got := m.highestBucket("poller_lease_renewal_round_seconds_bucket"); got != 0.08 {
		t.Errorf("highestBucket() = %v, want 0.08 (the first bucket holding all 3)", got)
	}
}
