package streamstest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Stream is a table's stream on the server: a test's handle to shape its shards and records. Its
// methods are safe for concurrent use, also while clients read. They panic on misuse (an unknown
// shard ID, a Put to a closed shard): that is a bug in the test, reported where it happens.
type Stream struct {
	srv *Server

	// Immutable after CreateStream.
	arn       string
	label     string
	table     string
	view      types.StreamViewType
	keySchema []keyElement
	created   time.Time

	// Guarded by srv.mu.
	enabled bool
	shards  []*shard // in creation order, which is also shard ID order
	byID    map[string]*shard
	// children lists each parent's children in creation order, listed or hidden, for CHILD_SHARDS.
	children map[string][]*shard
	lastNum  int64 // numeric part of the newest shard ID
}

type keyElement struct {
	AttributeName string
	KeyType       string
}

// shard is one shard's state, guarded by srv.mu. Records are immutable once appended, so a reader
// may use a sub-slice of recs taken under the lock after releasing it.
type shard struct {
	id     string
	parent string
	gen    int // lineage depth: 0 for a root, parent's + 1 otherwise

	start    *big.Int // StartingSequenceNumber
	next     *big.Int // the sequence number the next record gets
	assigned int      // records ever appended; drives sequenceStep
	last     *big.Int // the newest record's sequence number; nil while none
	end      *big.Int // EndingSequenceNumber; nil while the shard is open
	recs     []storedRecord
	trimmed  int      // records trimmed away before recs[0]: recs[i] has logical index trimmed+i
	lastTrim *big.Int // sequence number of the newest trimmed record; nil while none
	hidden   bool
}

type storedRecord struct {
	seq     *big.Int
	created time.Time // rounded down to the second, as sent
	wire    []byte    // the record as GetRecords sends it
}

func (sh *shard) closed() bool { return sh.end != nil }

// endPos is the logical index after the newest record.
func (sh *shard) endPos() int { return sh.trimmed + len(sh.recs) }

// StreamOption configures CreateStream.
type StreamOption func(*Stream)

// WithKeySchema sets the table's key attributes (string typed), as DescribeStream and DescribeTable
// report them. The default is a hash key named "pk".
func WithKeySchema(hashKey string, rangeKey ...string) StreamOption {
	return func(st *Stream) {
		st.keySchema = []keyElement{{AttributeName: hashKey, KeyType: "HASH"}}
		for _, r := range rangeKey {
			st.keySchema = append(st.keySchema, keyElement{AttributeName: r, KeyType: "RANGE"})
		}
	}
}

// CreateStream enables a stream on table with the given view type and returns it, with no shards yet
// (see OpenShard). A table's earlier stream, if any, is disabled first, as when a real stream is turned
// off and on again: its open shards close and the table's LatestStreamArn moves to the new one.
func (s *Server) CreateStream(table string, view types.StreamViewType, opts ...StreamOption) *Stream {
	switch view {
	case KeysOnly, NewImageOnly, OldImageOnly, NewAndOldImages:
	default:
		panic(fmt.Sprintf("streamstest: CreateStream(%q): unknown view type %q", table, view))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now().UTC()
	label := now.Format("2006-01-02T15:04:05.000")
	arn := fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", s.region, s.account, table, label)
	for s.streams[arn] != nil { // two streams of one table within a millisecond
		now = now.Add(time.Millisecond)
		label = now.Format("2006-01-02T15:04:05.000")
		arn = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", s.region, s.account, table, label)
	}
	st := &Stream{
		srv: s, arn: arn, label: label, table: table, view: view, created: now,
		keySchema: []keyElement{{AttributeName: "pk", KeyType: "HASH"}},
		enabled:   true,
		byID:      make(map[string]*shard),
		children:  make(map[string][]*shard),
	}
	for _, o := range opts {
		o(st)
	}
	if prev := s.tables[table]; prev != nil {
		prev.disableLocked()
	}
	s.streams[arn] = st
	s.streamList = append(s.streamList, st)
	s.tables[table] = st
	return st
}

// ARN is the stream's ARN.
func (st *Stream) ARN() string { return st.arn }

// Label is the stream's label (the timestamp at the end of its ARN).
func (st *Stream) Label() string { return st.label }

// Table is the stream's table name.
func (st *Stream) Table() string { return st.table }

// OpenShard opens a new shard and returns its ID. parent is its ParentShardId: "" for a root shard.
// The parent need not exist nor be closed, so a test can build inconsistent lineage: a child whose
// parent is missing, an open child of an open parent.
func (st *Stream) OpenShard(parent string) string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	return st.openLocked(parent).id
}

// OpenShards opens n root shards and returns their IDs in listing order.
func (st *Stream) OpenShards(n int) []string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = st.openLocked("").id
	}
	return ids
}

func (st *Stream) openLocked(parent string) *shard {
	gen := 0
	var after *big.Int
	if p := st.byID[parent]; p != nil {
		gen = p.gen + 1
		after = p.last
		if p.end != nil {
			after = p.end
		}
		if after == nil {
			after = p.start
		}
	}
	// Shard IDs look like real ones, shardId-<20 digits>-<8 hex>; the digits are the creation time in
	// milliseconds, made strictly increasing, so ID order is creation order (ExclusiveStartShardId).
	num := max(st.srv.clock.Now().UnixMilli(), st.lastNum+1)
	st.lastNum = num
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(num))
	sum := sha256.Sum256(append([]byte(st.arn), b[:]...))
	id := fmt.Sprintf("shardId-%020d-%x", num, sum[:4])
	start := firstSequence(gen, after)
	sh := &shard{id: id, parent: parent, gen: gen, start: start, next: new(big.Int).Set(start)}
	st.shards = append(st.shards, sh)
	st.byID[id] = sh
	if parent != "" {
		st.children[parent] = append(st.children[parent], sh)
	}
	return sh
}

// shardLocked returns the shard or panics: an unknown ID in a control call is a bug in the test.
func (st *Stream) shardLocked(call, id string) *shard {
	sh := st.byID[id]
	if sh == nil {
		panic(fmt.Sprintf("streamstest: %s(%q): no such shard in stream %s", call, id, st.arn))
	}
	return sh
}

// Put appends records to an open shard and returns their sequence numbers.
func (st *Stream) Put(shardID string, recs ...Record) []string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.shardLocked("Put", shardID)
	if sh.closed() {
		panic(fmt.Sprintf("streamstest: Put(%q): the shard is closed", shardID))
	}
	now := st.srv.clock.Now()
	seqs := make([]string, len(recs))
	for i, r := range recs {
		seq := new(big.Int).Set(sh.next)
		sh.next.Add(sh.next, big.NewInt(sequenceStep(sh.assigned)))
		sh.assigned++
		created := r.CreatedAt
		if created.IsZero() {
			created = now
		}
		created = created.Truncate(time.Second)
		seqs[i] = seq.String()
		wire, _ := encodeRecord(r, st.view, st.srv.region, st.arn, sh.id, seqs[i], created)
		sh.recs = append(sh.recs, storedRecord{seq: seq, created: created, wire: wire})
		sh.last = seq
	}
	return seqs
}

// CloseShard closes a shard: it gets its EndingSequenceNumber (its newest record's, or its starting
// number when empty) and readers get no NextShardIterator once they have read it all. It has no
// children until the test opens some (Split, Rollover, OpenShard): a closed shard without children
// is one of the inconsistent states the real service shows. Closing a closed shard does nothing.
func (st *Stream) CloseShard(shardID string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	st.closeLocked(st.shardLocked("CloseShard", shardID))
}

func (st *Stream) closeLocked(sh *shard) {
	if sh.closed() {
		return
	}
	sh.end = sh.last
	if sh.end == nil {
		sh.end = sh.start
	}
}

// Split closes a shard (if open) and opens two children of it, as a partition split does.
func (st *Stream) Split(shardID string) (string, string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.shardLocked("Split", shardID)
	st.closeLocked(sh)
	return st.openLocked(sh.id).id, st.openLocked(sh.id).id
}

// Rollover closes a shard (if open) and opens its one child, as the periodic rollover does.
func (st *Stream) Rollover(shardID string) string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.shardLocked("Rollover", shardID)
	st.closeLocked(sh)
	return st.openLocked(sh.id).id
}

// Trim drops the shard's n oldest records (all of them if it has fewer), as retention does. Iterators
// and sequence numbers that point at dropped records then get TrimmedDataAccessException, and
// TRIM_HORIZON starts after them.
func (st *Stream) Trim(shardID string, n int) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.shardLocked("Trim", shardID)
	n = min(max(n, 0), len(sh.recs))
	if n == 0 {
		return
	}
	sh.lastTrim = sh.recs[n-1].seq
	// A fresh slice, so the trimmed records can be freed; readers holding the old one are unaffected.
	sh.recs = append([]storedRecord(nil), sh.recs[n:]...)
	sh.trimmed += n
}

// Hide takes a shard out of DescribeStream's listing, as when the real service has trimmed it away
// (24 hours after it closed): its children keep naming it as parent, and GetShardIterator for it
// answers ResourceNotFoundException. Iterators already issued keep working.
func (st *Stream) Hide(shardID string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	st.shardLocked("Hide", shardID).hidden = true
}

// Show lists a hidden shard again: a shard that the listing shows late.
func (st *Stream) Show(shardID string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	st.shardLocked("Show", shardID).hidden = false
}

// Disable turns the stream off: its open shards close and its status becomes DISABLED. Its records
// stay readable.
func (st *Stream) Disable() {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	st.disableLocked()
}

func (st *Stream) disableLocked() {
	st.enabled = false
	for _, sh := range st.shards {
		st.closeLocked(sh)
	}
}
