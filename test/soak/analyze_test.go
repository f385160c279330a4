package soak

import "testing"

// TestAnalyze: the soak's judge finds each kind of defect it is there to find.
func TestAnalyze(t *testing.T) {
	d := func(key string, n, proc int) delivery { return delivery{key: key, n: n, proc: proc} }
	tests := []struct {
		name                            string
		records                         int
		recs                            []delivery
		lost, dups, order, perShardKill int
	}{
		{name: "every record once in order is clean", records: 3,
			recs: []delivery{d("s0-k00", 0, 0), d("s1-k00", 0, 0), d("s0-k00", 1, 0)}},
		{name: "a record that never arrived is lost", records: 3,
			recs: []delivery{d("s0-k00", 0, 0), d("s0-k00", 1, 0)}, lost: 1},
		{name: "a redelivery of a suffix after a kill is a duplicate, not disorder", records: 3,
			recs: []delivery{d("s0-k00", 0, 0), d("s0-k00", 1, 0), d("s0-k00", 2, 0), d("s0-k00", 1, 1), d("s0-k00", 2, 1)},
			dups: 2, perShardKill: 2},
		{name: "a record ahead of its key's predecessor is disorder", records: 3,
			recs: []delivery{d("s0-k00", 0, 0), d("s0-k00", 2, 0), d("s0-k00", 1, 0)}, order: 1},
		{name: "a redelivery that skips part of the suffix is disorder", records: 4,
			recs:  []delivery{d("s0-k00", 0, 0), d("s0-k00", 1, 0), d("s0-k00", 2, 0), d("s0-k00", 0, 1), d("s0-k00", 2, 1), d("s0-k00", 3, 1)},
			order: 1, dups: 2, perShardKill: 2},
		{name: "duplicates are charged per process and shard", records: 2,
			recs: []delivery{d("s0-k00", 0, 0), d("s3-k00", 0, 0), d("s0-k00", 0, 1), d("s3-k00", 0, 1), d("s3-k00", 0, 2)},
			dups: 3, perShardKill: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &result{factor: 1, records: tt.records, recs: tt.recs}
			r.analyze()
			if r.lost != tt.lost || r.duplicates != tt.dups || r.orderViolations != tt.order || r.maxPerShardKill != tt.perShardKill {
				t.Errorf("analyze() = lost %d, duplicates %d, order violations %d, max per shard per kill %d; want %d, %d, %d, %d",
					r.lost, r.duplicates, r.orderViolations, r.maxPerShardKill, tt.lost, tt.dups, tt.order, tt.perShardKill)
			}
		})
	}
}
