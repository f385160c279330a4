package failure

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// keptJSON stands for the JSON the dispatcher kept for the record with sequence number seq: not a
// real encoding, so that a record encoded again instead would show.
func keptJSON(seq string) []byte { return []byte(`{"kept":"` + seq + `"}`) }

// checkKept reports a batch whose kept JSON is missing or does not belong to its records.
func checkKept(t *testing.T, where string, b sinks.Batch) {
	t.Helper()
	if !assert.Len(t, b.RecordJSON, len(b.Records), "%s: kept JSON of every record", where) {
		return
	}
	for i, r := range b.Records {
		assert.Equal(t, string(keptJSON(r.Change.SequenceNumber)), string(b.RecordJSON[i]), "%s: record %d", where, i)
	}
}

// keptDest is an on_failure destination that checks the kept JSON of each report.
type keptDest struct {
	t       *testing.T
	mu      sync.Mutex
	reports [][]string
}

func (d *keptDest) Send(_ context.Context, f onfailure.Failure) error {
	checkKept(d.t, "on_failure report", f.Batch)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reports = append(d.reports, seqsOf(f.Batch.Records))
	return nil
}

// Every part of a batch the policy sends or reports (the fresh run after expired records, the rest
// after a partial batch response, bisected halves, a discarded record) carries the kept JSON of
// exactly its records, so the sink never encodes a record again.
func TestPolicyCarriesTheKeptJSONThroughEveryCut(t *testing.T) {
	now := time.Now()
	recs := lambdaRecs(8, func(i int) time.Time {
		if i < 2 {
			return now.Add(-2 * time.Hour) // expired: reported to on_failure
		}
		return now
	})
	b := batchOf(recs)
	for _, r := range recs {
		b.RecordJSON = append(b.RecordJSON, keptJSON(r.Change.SequenceNumber))
	}
	partialSent := false
	sink := &scriptedSink{answer: func(_ int, b sinks.Batch) error {
		checkKept(t, fmt.Sprintf("sink call of %v", seqsOf(b.Records)), b)
		if b.Records[0].Change.SequenceNumber == seqOf(2) && len(b.Records) > 2 && !partialSent {
			partialSent = true // accept 2, fail from 3 on: the rest is a new segment
			return &sinks.BatchError{Failed: []string{seqOf(3)}}
		}
		return failOn(seqOf(5))(0, b)
	}}
	dest := &keptDest{t: t}
	p := &Policy{Sink: sink, OnFailure: dest, MaxRetryAttempts: 0, MaxRecordAge: time.Hour, BisectOnError: true,
		ReportBatchItemFailures: true, Backoff: noWait, Now: func() time.Time { return now }, Log: zaptest.NewLogger(t)}

	require.NoError(t, p.Deliver(context.Background(), nil, b))
	assert.Equal(t, [][]string{
		{seqOf(2), seqOf(3), seqOf(4), seqOf(5), seqOf(6), seqOf(7)}, // partial: 2 accepted
		{seqOf(3), seqOf(4), seqOf(5), seqOf(6), seqOf(7)},           // fails on 5: bisected
		{seqOf(3), seqOf(4), seqOf(5)},
		{seqOf(3), seqOf(4)},
		{seqOf(5)},
		{seqOf(6), seqOf(7)},
	}, sink.calls)
	assert.Equal(t, [][]string{{seqOf(0), seqOf(1)}, {seqOf(5)}}, dest.reports)
}
