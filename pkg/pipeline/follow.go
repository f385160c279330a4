package pipeline

import (
	"context"
	"errors"
	"strings"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/shards"
)

// A table's stream can be disabled and enabled again (to change its view type, say): the new stream
// has a new ARN and new shards, and the old one stays readable for 24 hours, its shards closed. A
// pipeline whose source is a table follows the table's current stream, with the old stream's shards
// read to their end first; leases carry their stream's ARN, and only the leases of the stream being
// read count (for balancing, lineage and the first run).

// follow chooses the stream to read at each refresh (see chooseStream) and switches to it: the
// table's current stream is looked up with DescribeTable, at the listing's cadence. A pipeline
// configured with a stream ARN reads that stream only.
func (p *Pipeline) follow(ctx context.Context, st *state) {
	if p.Config.Source.StreamARN != "" || p.Tables == nil {
		return
	}
	current, err := resolveStream(ctx, p.Tables, p.Config.Source.Table)
	switch {
	case errors.Is(err, errNoStream):
		current = "" // disabled for now: finish what there is, and look again at the next refresh
	case err != nil:
		p.Log.Warn("looking up the table's current stream failed; reading the same stream", zap.Error(err))
		current = ""
	}
	unfinished := map[string]bool{}
	for _, l := range st.all {
		if !l.Finished && l.StreamARN != "" && sameTable(l.StreamARN, st.stream.ARN) {
			unfinished[l.StreamARN] = true
		}
	}
	next := chooseStream(st.stream.ARN, current, unfinished, streamDone(st))
	if next == st.stream.ARN {
		return
	}
	p.Log.Info("switching to the table's next stream", zap.String("from", st.stream.ARN), zap.String("to", next),
		zap.String("table_stream", current))
	st.stream = shards.Stream{ARN: next}
	st.leases = streamLeases(st.all, next)
}

// chooseStream is the stream to read next: the oldest (ARNs of one table order by their creation
// label) of the streams with unfinished leases, the table's current stream, and the stream being
// read unless it is done. So the old stream is read to its end before the new one starts, and a
// worker that starts after a stream was re-enabled still finishes the old stream first. With nothing
// to choose from (the stream is disabled, and the one read is done), it stays.
func chooseStream(reading, current string, unfinished map[string]bool, readingDone bool) string {
	next := ""
	consider := func(arn string) {
		if arn != "" && (next == "" || arn < next) {
			next = arn
		}
	}
	for arn := range unfinished {
		consider(arn)
	}
	consider(current)
	if !readingDone {
		consider(reading)
	}
	if next == "" {
		return reading
	}
	return next
}

// streamDone says whether the stream being read is read to its end: described, every shard closed,
// and every shard's lease finished.
func streamDone(st *state) bool {
	if len(st.stream.Shards) == 0 {
		return false
	}
	for _, s := range st.stream.Shards {
		if !s.Closed() || !st.leases[s.ID].Finished {
			return false
		}
	}
	return true
}

// streamLeases returns the leases of stream arn (leases written before leases carried their stream
// count as the stream's too).
func streamLeases(all []checkpoint.Lease, arn string) map[string]checkpoint.Lease {
	m := make(map[string]checkpoint.Lease, len(all))
	for _, l := range all {
		if l.StreamARN == "" || l.StreamARN == arn {
			m[l.ShardID] = l
		}
	}
	return m
}

// sameTable says whether two stream ARNs (arn:...:table/<name>/stream/<label>) are of one table:
// leases left by a pipeline that read another table before are not followed.
func sameTable(a, b string) bool {
	ta, _, _ := strings.Cut(a, "/stream/")
	tb, _, _ := strings.Cut(b, "/stream/")
	return ta == tb
}
