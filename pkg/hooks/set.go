package hooks

import (
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Set calls every hook given to New that implements a method's interface, in the order given.
// Which hooks implement what is checked once, in New. A nil *Set calls nothing. A Set is immutable
// and safe for concurrent use (as safe as its hooks are).
type Set struct {
	getRecords        []HookGetRecords
	trimmed           []HookTrimmed
	memoryWait        []HookMemoryWait
	bufferedBytes     []HookBufferedBytes
	recordsPolled     []HookRecordsPolled
	filteredOut       []HookRecordsFilteredOut
	recordsDropped    []HookRecordsDropped
	sinkCall          []HookSinkCall
	recordsDelivered  []HookRecordsDelivered
	batchBisected     []HookBatchBisected
	onFailureError    []HookOnFailureError
	checkpoint        []HookCheckpoint
	shardStarted      []HookShardStarted
	shardStopped      []HookShardStopped
	iteratorAge       []HookIteratorAge
	leasesOwned       []HookLeasesOwned
	leaseTakeover     []HookLeaseTakeover
	leaseRound        []HookLeaseRound
	leaseRenewals     []HookLeaseRenewals
	recordsSkipped    []HookRecordsSkipped
	pipelinePaused    []HookPipelinePaused
	sinkCallStarted   []HookSinkCallStarted
	sinkThrottled     []HookSinkThrottled
	recordsOnFailure  []HookRecordsOnFailure
	checkpointWritten []HookCheckpointWritten
}

// New returns a Set of hs; nil hooks are skipped.
func New(hs ...Hook) *Set {
	return &Set{
		getRecords:        implementing[HookGetRecords](hs),
		trimmed:           implementing[HookTrimmed](hs),
		memoryWait:        implementing[HookMemoryWait](hs),
		bufferedBytes:     implementing[HookBufferedBytes](hs),
		recordsPolled:     implementing[HookRecordsPolled](hs),
		filteredOut:       implementing[HookRecordsFilteredOut](hs),
		recordsDropped:    implementing[HookRecordsDropped](hs),
		sinkCall:          implementing[HookSinkCall](hs),
		recordsDelivered:  implementing[HookRecordsDelivered](hs),
		batchBisected:     implementing[HookBatchBisected](hs),
		onFailureError:    implementing[HookOnFailureError](hs),
		checkpoint:        implementing[HookCheckpoint](hs),
		shardStarted:      implementing[HookShardStarted](hs),
		shardStopped:      implementing[HookShardStopped](hs),
		iteratorAge:       implementing[HookIteratorAge](hs),
		leasesOwned:       implementing[HookLeasesOwned](hs),
		leaseTakeover:     implementing[HookLeaseTakeover](hs),
		leaseRound:        implementing[HookLeaseRound](hs),
		leaseRenewals:     implementing[HookLeaseRenewals](hs),
		recordsSkipped:    implementing[HookRecordsSkipped](hs),
		pipelinePaused:    implementing[HookPipelinePaused](hs),
		sinkCallStarted:   implementing[HookSinkCallStarted](hs),
		sinkThrottled:     implementing[HookSinkThrottled](hs),
		recordsOnFailure:  implementing[HookRecordsOnFailure](hs),
		checkpointWritten: implementing[HookCheckpointWritten](hs),
	}
}

func implementing[H any](hs []Hook) []H {
	var out []H
	for _, h := range hs {
		if x, ok := h.(H); ok {
			out = append(out, x)
		}
	}
	return out
}

var none = &Set{}

// of is s, or an empty Set for a nil s.
func (s *Set) of() *Set {
	if s == nil {
		return none
	}
	return s
}

func call[H any](hs []H, f func(H)) {
	for _, h := range hs {
		f(h)
	}
}

// OnGetRecords calls every HookGetRecords.
func (s *Set) OnGetRecords(shardID, result string) {
	call(s.of().getRecords, func(h HookGetRecords) { h.OnGetRecords(shardID, result) })
}

// OnTrimmed calls every HookTrimmed.
func (s *Set) OnTrimmed(shardID string) {
	call(s.of().trimmed, func(h HookTrimmed) { h.OnTrimmed(shardID) })
}

// OnMemoryWait calls every HookMemoryWait.
func (s *Set) OnMemoryWait(shardID string) {
	call(s.of().memoryWait, func(h HookMemoryWait) { h.OnMemoryWait(shardID) })
}

// OnBufferedBytes calls every HookBufferedBytes.
func (s *Set) OnBufferedBytes(delta int64) {
	call(s.of().bufferedBytes, func(h HookBufferedBytes) { h.OnBufferedBytes(delta) })
}

// OnRecordsPolled calls every HookRecordsPolled.
func (s *Set) OnRecordsPolled(shardID string, n int) {
	call(s.of().recordsPolled, func(h HookRecordsPolled) { h.OnRecordsPolled(shardID, n) })
}

// OnRecordsFilteredOut calls every HookRecordsFilteredOut.
func (s *Set) OnRecordsFilteredOut(shardID string, n int) {
	call(s.of().filteredOut, func(h HookRecordsFilteredOut) { h.OnRecordsFilteredOut(shardID, n) })
}

// OnRecordsDropped calls every HookRecordsDropped.
func (s *Set) OnRecordsDropped(shardID, reason string, n int) {
	call(s.of().recordsDropped, func(h HookRecordsDropped) { h.OnRecordsDropped(shardID, reason, n) })
}

// OnSinkCall calls every HookSinkCall.
func (s *Set) OnSinkCall(shardID, result string, took time.Duration, err error) {
	call(s.of().sinkCall, func(h HookSinkCall) { h.OnSinkCall(shardID, result, took, err) })
}

// OnRecordsDelivered calls every HookRecordsDelivered.
func (s *Set) OnRecordsDelivered(shardID string, recs []events.DynamoDBEventRecord) {
	call(s.of().recordsDelivered, func(h HookRecordsDelivered) { h.OnRecordsDelivered(shardID, recs) })
}

// OnBatchBisected calls every HookBatchBisected.
func (s *Set) OnBatchBisected(shardID string) {
	call(s.of().batchBisected, func(h HookBatchBisected) { h.OnBatchBisected(shardID) })
}

// OnOnFailureError calls every HookOnFailureError.
func (s *Set) OnOnFailureError(shardID string, err error) {
	call(s.of().onFailureError, func(h HookOnFailureError) { h.OnOnFailureError(shardID, err) })
}

// OnCheckpoint calls every HookCheckpoint.
func (s *Set) OnCheckpoint(shardID, result string) {
	call(s.of().checkpoint, func(h HookCheckpoint) { h.OnCheckpoint(shardID, result) })
}

// OnShardStarted calls every HookShardStarted.
func (s *Set) OnShardStarted(shardID string) {
	call(s.of().shardStarted, func(h HookShardStarted) { h.OnShardStarted(shardID) })
}

// OnShardStopped calls every HookShardStopped.
func (s *Set) OnShardStopped(shardID string, finished bool) {
	call(s.of().shardStopped, func(h HookShardStopped) { h.OnShardStopped(shardID, finished) })
}

// OnIteratorAge calls every HookIteratorAge.
func (s *Set) OnIteratorAge(shardID string, since time.Time) {
	call(s.of().iteratorAge, func(h HookIteratorAge) { h.OnIteratorAge(shardID, since) })
}

// OnLeasesOwned calls every HookLeasesOwned.
func (s *Set) OnLeasesOwned(n int) {
	call(s.of().leasesOwned, func(h HookLeasesOwned) { h.OnLeasesOwned(n) })
}

// OnLeaseTakeover calls every HookLeaseTakeover.
func (s *Set) OnLeaseTakeover(shardID string) {
	call(s.of().leaseTakeover, func(h HookLeaseTakeover) { h.OnLeaseTakeover(shardID) })
}

// OnLeaseRound calls every HookLeaseRound.
func (s *Set) OnLeaseRound(err error) {
	call(s.of().leaseRound, func(h HookLeaseRound) { h.OnLeaseRound(err) })
}

// OnLeaseRenewals calls every HookLeaseRenewals.
func (s *Set) OnLeaseRenewals(took time.Duration, failed int) {
	call(s.of().leaseRenewals, func(h HookLeaseRenewals) { h.OnLeaseRenewals(took, failed) })
}

// OnRecordsSkipped calls every HookRecordsSkipped.
func (s *Set) OnRecordsSkipped(shardID, reason string, n int) {
	call(s.of().recordsSkipped, func(h HookRecordsSkipped) { h.OnRecordsSkipped(shardID, reason, n) })
}

// OnPipelinePaused calls every HookPipelinePaused.
func (s *Set) OnPipelinePaused(paused bool) {
	call(s.of().pipelinePaused, func(h HookPipelinePaused) { h.OnPipelinePaused(paused) })
}

// OnSinkCallStarted calls every HookSinkCallStarted.
func (s *Set) OnSinkCallStarted(shardID string) {
	call(s.of().sinkCallStarted, func(h HookSinkCallStarted) { h.OnSinkCallStarted(shardID) })
}

// OnSinkThrottled calls every HookSinkThrottled.
func (s *Set) OnSinkThrottled(shardID string) {
	call(s.of().sinkThrottled, func(h HookSinkThrottled) { h.OnSinkThrottled(shardID) })
}

// OnRecordsOnFailure calls every HookRecordsOnFailure.
func (s *Set) OnRecordsOnFailure(shardID string, n int) {
	call(s.of().recordsOnFailure, func(h HookRecordsOnFailure) { h.OnRecordsOnFailure(shardID, n) })
}

// OnCheckpointWritten calls every HookCheckpointWritten.
func (s *Set) OnCheckpointWritten(shardID, seq string) {
	call(s.of().checkpointWritten, func(h HookCheckpointWritten) { h.OnCheckpointWritten(shardID, seq) })
}
