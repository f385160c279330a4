package control

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/poller-dev/poller/pkg/checkpoint"
)

// Shard states in a Status.
const (
	StateWaiting  = "waiting"  // a parent shard is not finished
	StateReading  = "reading"  // owned by a worker
	StateFinished = "finished" // read and delivered to its end
	StateUnowned  = "unowned"  // ready, but no worker holds it
)

// Document is `poller status --json`: fields may be added, never removed or renamed.
type Document struct {
	Pipelines []PipelineStatus `json:"pipelines"`
}

// PipelineStatus is one pipeline as the lease table shows it.
type PipelineStatus struct {
	Name      string `json:"name"`
	StreamARN string `json:"stream_arn"`
	Paused    bool   `json:"paused"`
	// Enabled is the config's enabled: a disabled pipeline is not run by any replica using it.
	Enabled bool           `json:"enabled"`
	Workers []WorkerStatus `json:"workers"`
	Shards  []ShardStatus  `json:"shards"`
}

// WorkerStatus is a live worker (its heartbeat is recent) and how many unfinished leases it holds.
type WorkerStatus struct {
	ID     string `json:"id"`
	Leases int    `json:"leases"`
}

// ShardStatus is one lease.
type ShardStatus struct {
	ShardID       string `json:"shard_id"`
	ParentShardID string `json:"parent_shard_id"`
	Owner         string `json:"owner"`
	Checkpoint    string `json:"checkpoint"`
	State         string `json:"state"`
	// IteratorAgeSeconds is the owner's last report: the age of the oldest record not yet done;
	// nil (null) when unknown.
	IteratorAgeSeconds *float64 `json:"iterator_age_seconds"`
}

// Query is one pipeline to show.
type Query struct {
	Name string
	// StreamARN is the configured stream, "" for a pipeline configured by table: then the newest
	// stream the leases name.
	StreamARN string
	Enabled   bool
	// Live is how recent a heartbeat makes a worker live: the lease_duration.
	Live time.Duration
}

// Status reads each pipeline's control item and leases.
func Status(ctx context.Context, t Table, qs []Query, now time.Time) (Document, error) {
	doc := Document{Pipelines: []PipelineStatus{}}
	for _, q := range qs {
		ctl, err := t.Control(ctx, q.Name)
		if err != nil {
			return Document{}, err
		}
		leases, workers, err := t.List(ctx, q.Name)
		if err != nil {
			return Document{}, err
		}
		ps := PipelineStatus{Name: q.Name, Paused: ctl.Paused, Enabled: q.Enabled}
		ps.StreamARN = cmp.Or(q.StreamARN, newestStream(leases))
		leases = ofStream(leases, ps.StreamARN)
		ps.Workers = liveWorkers(workers, leases, now, q.Live)
		ps.Shards = shardStates(leases)
		doc.Pipelines = append(doc.Pipelines, ps)
	}
	return doc, nil
}

// newestStream is the greatest stream ARN of the leases: ARNs of one table order by their label,
// the stream's creation time.
func newestStream(leases []checkpoint.Lease) string {
	arn := ""
	for _, l := range leases {
		arn = max(arn, l.StreamARN)
	}
	return arn
}

// ofStream keeps the leases of stream arn (and those written before leases named their stream).
func ofStream(leases []checkpoint.Lease, arn string) []checkpoint.Lease {
	return slices.DeleteFunc(slices.Clone(leases), func(l checkpoint.Lease) bool {
		return l.StreamARN != "" && l.StreamARN != arn
	})
}

// liveWorkers are the workers whose heartbeat was written within live of now (by the writers' wall
// clocks: good enough for a display, never used to judge a lease), with their leases, by ID.
func liveWorkers(workers []checkpoint.Worker, leases []checkpoint.Lease, now time.Time, live time.Duration) []WorkerStatus {
	held := map[string]int{}
	for _, l := range leases {
		if l.Owner != "" && !l.Finished {
			held[l.Owner]++
		}
	}
	out := []WorkerStatus{}
	for _, w := range workers {
		if now.Sub(w.UpdatedAt) <= live {
			out = append(out, WorkerStatus{ID: w.ID, Leases: held[w.ID]})
		}
	}
	slices.SortFunc(out, func(a, b WorkerStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// shardStates is each lease's status, parents before children, then by shard ID.
func shardStates(leases []checkpoint.Lease) []ShardStatus {
	byID := make(map[string]checkpoint.Lease, len(leases))
	for _, l := range leases {
		byID[l.ShardID] = l
	}
	out := make([]ShardStatus, 0, len(leases))
	for _, l := range leases {
		s := ShardStatus{ShardID: l.ShardID, Owner: l.Owner, Checkpoint: l.Checkpoint, State: stateOf(l, byID)}
		if len(l.Parents) > 0 {
			s.ParentShardID = l.Parents[0]
		}
		if l.AgeReported && s.State == StateReading {
			age := l.IteratorAge.Seconds()
			s.IteratorAgeSeconds = &age
		}
		out = append(out, s)
	}
	depth := func(id string) int {
		n := 0
		for seen := map[string]bool{}; !seen[id]; n++ {
			seen[id] = true
			l, ok := byID[id]
			if !ok || len(l.Parents) == 0 {
				break
			}
			id = l.Parents[0]
		}
		return n
	}
	slices.SortFunc(out, func(a, b ShardStatus) int {
		return cmp.Or(cmp.Compare(depth(a.ShardID), depth(b.ShardID)), strings.Compare(a.ShardID, b.ShardID))
	})
	return out
}

func stateOf(l checkpoint.Lease, byID map[string]checkpoint.Lease) string {
	if l.Finished {
		return StateFinished
	}
	for _, p := range l.Parents {
		if pl, ok := byID[p]; ok && !pl.Finished {
			return StateWaiting
		}
	}
	if l.Owner != "" {
		return StateReading
	}
	return StateUnowned
}

// WriteTable prints doc for humans: per pipeline a header, its workers, and a table of its shards.
func WriteTable(w io.Writer, doc Document) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, p := range doc.Pipelines {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		state := "running"
		switch {
		case !p.Enabled:
			state = "disabled (enabled: false)"
		case p.Paused:
			state = "PAUSED"
		}
		fmt.Fprintf(tw, "pipeline %s: %s\nstream: %s\n", p.Name, state, cmp.Or(p.StreamARN, "(no leases yet)"))
		ws := make([]string, 0, len(p.Workers))
		for _, wk := range p.Workers {
			ws = append(ws, fmt.Sprintf("%s (%d leases)", wk.ID, wk.Leases))
		}
		fmt.Fprintf(tw, "workers: %s\n", cmp.Or(strings.Join(ws, ", "), "none live"))
		fmt.Fprintln(tw, "SHARD\tPARENT\tSTATE\tOWNER\tCHECKPOINT\tITERATOR AGE")
		for _, s := range p.Shards {
			age := "-"
			if s.IteratorAgeSeconds != nil {
				age = (time.Duration(*s.IteratorAgeSeconds * float64(time.Second))).Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ShardID, dash(s.ParentShardID), s.State, dash(s.Owner), dash(s.Checkpoint), age)
		}
	}
	return tw.Flush()
}

func dash(s string) string { return cmp.Or(s, "-") }
