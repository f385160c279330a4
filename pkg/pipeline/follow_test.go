package pipeline

import "testing"

func TestChooseStream(t *testing.T) {
	const old, cur, newer = "arn:t/stream/2026-01-01T00:00:00.000", "arn:t/stream/2026-02-01T00:00:00.000", "arn:t/stream/2026-03-01T00:00:00.000"
	for _, tc := range []struct {
		name             string
		reading, current string
		unfinished       []string
		readingDone      bool
		want             string
	}{
		{"the table's stream, read as long as it is its stream", cur, cur, []string{cur}, false, cur},
		{"a re-enabled stream waits while the old one has unfinished leases", cur, newer, []string{cur}, false, cur},
		{"a re-enabled stream waits while the old one is not read to its end", cur, newer, nil, false, cur},
		{"the new stream once the old one is read to its end", cur, newer, nil, true, newer},
		{"a worker started after the re-enable finishes the old stream first", newer, newer, []string{cur, newer}, false, cur},
		{"the oldest unfinished stream first", newer, newer, []string{cur, old}, false, old},
		{"a disabled stream read to its end: stay until the table has a stream again", cur, "", nil, true, cur},
		{"a disabled stream not read to its end: read on", cur, "", []string{cur}, false, cur},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unfinished := map[string]bool{}
			for _, a := range tc.unfinished {
				unfinished[a] = true
			}
			if got := chooseStream(tc.reading, tc.current, unfinished, tc.readingDone); got != tc.want {
				t.Errorf("chooseStream() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSameTable(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"arn:aws:dynamodb:r:1:table/A/stream/2026-01-01T00:00:00.000", "arn:aws:dynamodb:r:1:table/A/stream/2026-02-01T00:00:00.000", true},
		{"arn:aws:dynamodb:r:1:table/A/stream/2026-01-01T00:00:00.000", "arn:aws:dynamodb:r:1:table/B/stream/2026-01-01T00:00:00.000", false},
	} {
		if got := sameTable(tc.a, tc.b); got != tc.want {
			t.Errorf("sameTable(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
