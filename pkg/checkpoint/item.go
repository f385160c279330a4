package checkpoint

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names and key prefixes of the lease table; doc.go describes each.
const (
	attrPipeline   = "pipeline"
	attrKey        = "key"
	attrOwner      = "owner"
	attrCounter    = "counter"
	attrCheckpoint = "checkpoint"
	attrFinished   = "finished"
	attrFinishedAt = "finished_at"
	attrUpdatedAt  = "updated_at"
	attrTakeovers  = "takeovers"
	attrWantedBy   = "wanted_by"
	attrStartSeq   = "start_seq"
	attrStartTime  = "start_time"
	attrStartIter  = "start_iterator"
	attrStartAt    = "start_at"
	attrProtocol   = "protocol"
	attrTakes      = "takes"
	attrVouchedAt  = "vouched_counter"

	leasePrefix  = "shard#"
	workerPrefix = "worker#"
)

// Lease is one shard's lease and checkpoint, as read from the table.
type Lease struct {
	Pipeline  string
	ShardID   string
	StreamARN string
	// Parents are the IDs of the shard's parent shards (none for a shard without parents).
	Parents []string
	// Owner is the worker ID holding the lease, "" when the lease is free.
	Owner string
	// Counter is bumped by every write; it names exactly one state of the lease and is the fencing
	// token of its holder.
	Counter int64
	// Checkpoint is the sequence number of the last delivered record, "" when none was.
	Checkpoint string
	// Finished says every record of the (closed) shard was delivered; a finished lease has no owner.
	Finished bool
	// FinishedAt and UpdatedAt are the writers' wall-clock times: informational, never compared with
	// another machine's clock to judge a lease.
	FinishedAt time.Time
	UpdatedAt  time.Time
	// Takeovers counts the times the lease was taken from another owner.
	Takeovers int64
	// StartAt is the first run's decision for the shard: "" (TRIM_HORIZON), StartLatest (open when a
	// LATEST pipeline first ran: read from its tip as first resolved, see StartSeq and StartTime) or
	// StartSkipped (closed when a LATEST pipeline first ran: never read, created finished).
	StartAt string
	// StartSeq is where a LATEST lease's reading was pinned: the first record read through the
	// LATEST iterator (or the first one not skipped, see StartTime), stored before it was delivered.
	// While there is no checkpoint, reading resumes AT this sequence number: LATEST is never resolved
	// twice. "" when not pinned yet.
	StartSeq string
	// StartTime is when LATEST was first resolved for the shard (the holder's wall clock, stored
	// before it asked for the LATEST iterator). A lease with StartTime but no StartSeq and no
	// checkpoint had no record read yet: it resumes at TRIM_HORIZON, skipping the records created
	// well before StartTime (see the pipeline package). Zero when not resolved yet.
	StartTime time.Time
	// StartIterator is the shard iterator of a LATEST lease whose shard had no record yet when its
	// holder stopped or handed it over: the next holder reads on from it (exact) while it is valid (15
	// minutes), else as StartTime says. "" when there is none.
	StartIterator string
	// WantedBy is a worker that asked the owner to hand the lease over (a cooperative steal, see
	// Store.Want); "" when nobody asked. It is a request, not a state: writing it does not bump Counter.
	WantedBy string
	// IteratorAge is the owner's last report of the shard's iterator age (the age of the oldest
	// record not yet done, 0 when caught up), written with its renewals and checkpoints; valid when
	// AgeReported.
	IteratorAge time.Duration
	AgeReported bool

	// OwnerBeat is not stored: the Tracker sets it on an expired lease whose owner vouches for its
	// leases with its heartbeat (Worker.Vouches), to the owner's heartbeat counter it saw stand still.
	// Take then fences that heartbeat as well as the lease (see Store.Take). 0: the lease alone.
	OwnerBeat int64
}

// Values of Lease.StartAt (and StartAtTime).
const (
	StartLatest  = "LATEST"
	StartSkipped = "SKIPPED"
)

// Worker is a worker's heartbeat item: Counter moves while the worker is alive.
type Worker struct {
	Pipeline string
	ID       string
	Counter  int64
	// Protocol is the lease protocol the worker speaks: 0 for a version that renews each lease on
	// its own; ProtocolVouch for one whose heartbeat vouches for its leases (see Worker.Vouches).
	Protocol int
	// Takes counts the leases taken from the worker over its heartbeat (Store.Take with OwnerBeat):
	// a worker whose own heartbeat finds it changed knows some lease of its may be gone.
	Takes int64
	// VouchedCounter is the counter the last heartbeat of protocol 2 wrote, with the counter itself.
	// An older version's heartbeat moves the counter alone (a worker ID reused across a rollback):
	// then they differ and the item vouches for nothing.
	VouchedCounter int64
	UpdatedAt      time.Time // informational
}

// ProtocolVouch is the lease protocol of a worker whose heartbeat keeps its leases: while its
// heartbeat counter moves, its leases are not taken even if their own counters stand still.
const ProtocolVouch = 2

// Vouches says whether w's heartbeat keeps its leases (see ProtocolVouch): its last heartbeat was
// of protocol 2 (VouchedCounter).
func (w Worker) Vouches() bool { return w.Protocol >= ProtocolVouch && w.VouchedCounter == w.Counter }

// leaseItem is a lease as stored. Times are RFC 3339 strings so that the table reads well in the console.
type leaseItem struct {
	Pipeline   string   `dynamodbav:"pipeline"`
	Key        string   `dynamodbav:"key"`
	ShardID    string   `dynamodbav:"shard_id"`
	StreamARN  string   `dynamodbav:"stream_arn,omitempty"`
	Parents    []string `dynamodbav:"parents,omitempty"`
	Owner      string   `dynamodbav:"owner,omitempty"`
	Counter    int64    `dynamodbav:"counter"`
	Checkpoint string   `dynamodbav:"checkpoint,omitempty"`
	Finished   bool     `dynamodbav:"finished"`
	FinishedAt string   `dynamodbav:"finished_at,omitempty"`
	UpdatedAt  string   `dynamodbav:"updated_at,omitempty"`
	Takeovers  int64    `dynamodbav:"takeovers"`
	StartAt    string   `dynamodbav:"start_at,omitempty"`
	StartSeq   string   `dynamodbav:"start_seq,omitempty"`
	StartTime  string   `dynamodbav:"start_time,omitempty"`
	StartIter  string   `dynamodbav:"start_iterator,omitempty"`
	WantedBy   string   `dynamodbav:"wanted_by,omitempty"`
	// IteratorAge is in seconds; nil when not reported.
	IteratorAge *float64 `dynamodbav:"iterator_age,omitempty"`
}

type workerItem struct {
	Pipeline  string `dynamodbav:"pipeline"`
	Key       string `dynamodbav:"key"`
	WorkerID  string `dynamodbav:"worker_id"`
	Counter   int64  `dynamodbav:"counter"`
	Protocol  int    `dynamodbav:"protocol,omitempty"`
	Takes     int64  `dynamodbav:"takes,omitempty"`
	Vouched   int64  `dynamodbav:"vouched_counter,omitempty"`
	UpdatedAt string `dynamodbav:"updated_at,omitempty"`
}

func leaseKey(shardID string) string   { return leasePrefix + shardID }
func workerKey(workerID string) string { return workerPrefix + workerID }

func itemKey(pipeline, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPipeline: &types.AttributeValueMemberS{Value: pipeline},
		attrKey:      &types.AttributeValueMemberS{Value: key},
	}
}

// stamp formats a wall-clock time as stored in updated_at and finished_at.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseStamp(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func decodeLease(av map[string]types.AttributeValue) (Lease, error) {
	var it leaseItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Lease{}, fmt.Errorf("decode lease item: %w", err)
	}
	l := Lease{
		Pipeline:      it.Pipeline,
		ShardID:       it.ShardID,
		StreamARN:     it.StreamARN,
		Parents:       it.Parents,
		Owner:         it.Owner,
		Counter:       it.Counter,
		Checkpoint:    it.Checkpoint,
		Finished:      it.Finished,
		Takeovers:     it.Takeovers,
		StartAt:       it.StartAt,
		StartSeq:      it.StartSeq,
		StartIterator: it.StartIter,
		WantedBy:      it.WantedBy,
	}
	if it.IteratorAge != nil {
		l.IteratorAge, l.AgeReported = time.Duration(*it.IteratorAge*float64(time.Second)), true
	}
	if l.ShardID == "" {
		l.ShardID = strings.TrimPrefix(it.Key, leasePrefix)
	}
	var err error
	if l.FinishedAt, err = parseStamp(attrFinishedAt, it.FinishedAt); err != nil {
		return Lease{}, fmt.Errorf("decode lease item %s: %w", it.Key, err)
	}
	if l.UpdatedAt, err = parseStamp(attrUpdatedAt, it.UpdatedAt); err != nil {
		return Lease{}, fmt.Errorf("decode lease item %s: %w", it.Key, err)
	}
	if l.StartTime, err = parseStamp(attrStartTime, it.StartTime); err != nil {
		return Lease{}, fmt.Errorf("decode lease item %s: %w", it.Key, err)
	}
	return l, nil
}

func decodeWorker(av map[string]types.AttributeValue) (Worker, error) {
	var it workerItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Worker{}, fmt.Errorf("decode worker item: %w", err)
	}
	w := Worker{Pipeline: it.Pipeline, ID: it.WorkerID, Counter: it.Counter, Protocol: it.Protocol, Takes: it.Takes, VouchedCounter: it.Vouched}
	if w.ID == "" {
		w.ID = strings.TrimPrefix(it.Key, workerPrefix)
	}
	var err error
	if w.UpdatedAt, err = parseStamp(attrUpdatedAt, it.UpdatedAt); err != nil {
		return Worker{}, fmt.Errorf("decode worker item %s: %w", it.Key, err)
	}
	return w, nil
}
