package streamstest

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// The operations' inputs and outputs, in the Streams API's JSON member names.

type wireShard struct {
	ShardID             string   `json:"ShardId"`
	ParentShardID       string   `json:"ParentShardId,omitempty"`
	SequenceNumberRange seqRange `json:"SequenceNumberRange"`
}

type seqRange struct {
	StartingSequenceNumber string `json:"StartingSequenceNumber"`
	EndingSequenceNumber   string `json:"EndingSequenceNumber,omitempty"`
}

type streamDescription struct {
	StreamArn               string       `json:"StreamArn"`
	StreamLabel             string       `json:"StreamLabel"`
	StreamStatus            string       `json:"StreamStatus"`
	StreamViewType          string       `json:"StreamViewType"`
	CreationRequestDateTime float64      `json:"CreationRequestDateTime"`
	TableName               string       `json:"TableName"`
	KeySchema               []keyElement `json:"KeySchema"`
	Shards                  []wireShard  `json:"Shards"`
	LastEvaluatedShardID    string       `json:"LastEvaluatedShardId,omitempty"`
}

const (
	maxDescribeLimit = 100
	maxRecordsLimit  = 1000
	maxRecordsBytes  = 1 << 20
	maxStreamsLimit  = 100
)

func epochSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func validationf(format string, args ...any) *APIError {
	return apiError(http.StatusBadRequest, "ValidationException", format, args...)
}

func notFoundf(format string, args ...any) *APIError {
	return apiError(http.StatusBadRequest, "ResourceNotFoundException", format, args...)
}

// checkLimit validates an optional Limit member against 1..max, as the service's validator words it.
func checkLimit(limit *int, def, maxLimit int) (int, *APIError) {
	if limit == nil {
		return def, nil
	}
	if *limit < 1 {
		return 0, validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *limit)
	}
	if *limit > maxLimit {
		return 0, validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to %d", *limit, maxLimit)
	}
	return *limit, nil
}

func (s *Server) describeStream(c *call) {
	var in struct {
		StreamArn             string
		Limit                 *int
		ExclusiveStartShardID string `json:"ExclusiveStartShardId"`
		ShardFilter           *struct {
			Type    string
			ShardID string `json:"ShardId"`
		}
	}
	if !s.decode(c, &in) {
		return
	}
	if ok, _ := s.runHook(c, Request{StreamARN: in.StreamArn}); !ok {
		return
	}
	limit, apiErr := checkLimit(in.Limit, maxDescribeLimit, maxDescribeLimit)
	if apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	if in.StreamArn == "" {
		s.writeError(c, validationf("1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null"))
		return
	}
	if f := in.ShardFilter; f != nil && (f.Type != "CHILD_SHARDS" || f.ShardID == "") {
		s.writeError(c, validationf("ShardFilter: Type must be CHILD_SHARDS and ShardId set, got Type %q, ShardId %q", f.Type, f.ShardID))
		return
	}

	s.mu.RLock()
	st := s.streams[in.StreamArn]
	if st == nil {
		s.mu.RUnlock()
		s.writeError(c, notFoundf("Requested resource not found: Stream: %s not found", in.StreamArn))
		return
	}
	candidates := st.shards
	if in.ShardFilter != nil {
		candidates = st.children[in.ShardFilter.ShardID]
	}
	// Shard IDs sort in creation order, so the page starts after ExclusiveStartShardId even when that
	// shard is hidden or unknown.
	i := sort.Search(len(candidates), func(i int) bool { return candidates[i].id > in.ExclusiveStartShardID })
	desc := streamDescription{
		StreamArn: st.arn, StreamLabel: st.label, StreamStatus: "ENABLED", StreamViewType: string(st.view),
		CreationRequestDateTime: epochSeconds(st.created), TableName: st.table, KeySchema: st.keySchema,
		Shards: make([]wireShard, 0, min(limit, len(candidates)-i)),
	}
	if !st.enabled {
		desc.StreamStatus = "DISABLED"
	}
	for ; i < len(candidates) && len(desc.Shards) < limit; i++ {
		sh := candidates[i]
		if sh.hidden {
			continue
		}
		ws := wireShard{ShardID: sh.id, ParentShardID: sh.parent}
		ws.SequenceNumberRange.StartingSequenceNumber = sh.start.String()
		if sh.end != nil {
			ws.SequenceNumberRange.EndingSequenceNumber = sh.end.String()
		}
		desc.Shards = append(desc.Shards, ws)
	}
	s.mu.RUnlock()
	// A full page names its last shard even when no more follow, as the API allows: callers must
	// page until LastEvaluatedShardId is absent.
	if len(desc.Shards) == limit {
		desc.LastEvaluatedShardID = desc.Shards[limit-1].ShardID
	}
	s.writeJSON(c, struct {
		StreamDescription streamDescription
	}{desc})
}

func (s *Server) getShardIterator(c *call) {
	var in struct {
		StreamArn         string
		ShardID           string `json:"ShardId"`
		ShardIteratorType string
		SequenceNumber    string
		Timestamp         *json.Number
	}
	if !s.decode(c, &in) {
		return
	}
	if ok, _ := s.runHook(c, Request{StreamARN: in.StreamArn, ShardID: in.ShardID}); !ok {
		return
	}
	if in.StreamArn == "" || in.ShardID == "" || in.ShardIteratorType == "" {
		s.writeError(c, validationf("StreamArn, ShardId and ShardIteratorType are required"))
		return
	}
	var seq *big.Int
	var at time.Time
	switch in.ShardIteratorType {
	case "TRIM_HORIZON", "LATEST":
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		var ok bool
		if seq, ok = parseSequence(in.SequenceNumber); !ok {
			s.writeError(c, validationf("Invalid SequenceNumber %q for %s: must be a decimal number", in.SequenceNumber, in.ShardIteratorType))
			return
		}
	case "AT_TIMESTAMP":
		if in.Timestamp == nil {
			s.writeError(c, validationf("Timestamp is required for AT_TIMESTAMP"))
			return
		}
		f, err := in.Timestamp.Float64()
		if err != nil {
			s.writeError(c, validationf("Invalid Timestamp %q", in.Timestamp.String()))
			return
		}
		at = time.UnixMilli(int64(f * 1000))
	default:
		s.writeError(c, validationf("1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", in.ShardIteratorType))
		return
	}

	now := s.clock.Now()
	s.mu.RLock()
	pos, apiErr := s.positionLocked(in.StreamArn, in.ShardID, in.ShardIteratorType, seq, at, now)
	s.mu.RUnlock()
	if apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	it := iterator{streamARN: in.StreamArn, shardID: in.ShardID, pos: pos, issued: now}
	s.writeJSON(c, struct{ ShardIterator string }{it.encode(s.nonce)})
}

// positionLocked resolves where an iterator of type typ starts: a logical record index.
func (s *Server) positionLocked(arn, shardID, typ string, seq *big.Int, at, now time.Time) (int, *APIError) {
	st := s.streams[arn]
	if st == nil {
		return 0, notFoundf("Requested resource not found: Stream: %s not found", arn)
	}
	sh := st.byID[shardID]
	if sh == nil || sh.hidden {
		return 0, notFoundf("Requested resource not found: Shard: %s in Stream: %s not found", shardID, arn)
	}
	switch typ {
	case "TRIM_HORIZON":
		return sh.trimmed, nil
	case "LATEST":
		return sh.endPos(), nil
	case "AT_TIMESTAMP":
		if at.After(now) {
			return 0, validationf("Timestamp %s is in the future", at.UTC().Format(time.RFC3339Nano))
		}
		i := sort.Search(len(sh.recs), func(i int) bool { return !sh.recs[i].created.Before(at) })
		return sh.trimmed + i, nil
	}
	// AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
	if seq.Cmp(sh.start) < 0 || (sh.end != nil && seq.Cmp(sh.end) > 0) {
		return 0, validationf("Invalid SequenceNumber %s for shard %s: not in the shard's range", seq, shardID)
	}
	after := typ == "AFTER_SEQUENCE_NUMBER"
	if sh.lastTrim != nil {
		if c := seq.Cmp(sh.lastTrim); c < 0 || (c == 0 && !after) {
			return 0, apiError(http.StatusBadRequest, "TrimmedDataAccessException",
				"The operation attempted to read past the oldest stream record in a shard: %s %s of %s was trimmed", typ, seq, shardID)
		}
	}
	i := sort.Search(len(sh.recs), func(i int) bool {
		c := sh.recs[i].seq.Cmp(seq)
		return c > 0 || (c == 0 && !after)
	})
	return sh.trimmed + i, nil
}

func (s *Server) getRecords(c *call) {
	var in struct {
		ShardIterator string
		Limit         *int
	}
	if !s.decode(c, &in) {
		return
	}
	it, itOK := decodeIterator(in.ShardIterator, s.nonce)
	ok, emptyPage := s.runHook(c, Request{StreamARN: it.streamARN, ShardID: it.shardID})
	if !ok {
		return
	}
	limit, apiErr := checkLimit(in.Limit, maxRecordsLimit, maxRecordsLimit)
	if apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	now := s.clock.Now()
	if apiErr := s.checkIterator(it, itOK, now); apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	if emptyPage {
		limit = 0
	}
	recs, finished, apiErr := s.page(it, limit)
	if apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	// A closed shard read to its end gets no NextShardIterator, in the same answer that carries its
	// last records: a consumer must deliver those before it treats the shard as finished.
	next := ""
	if !finished {
		next = iterator{streamARN: it.streamARN, shardID: it.shardID, pos: it.pos + len(recs), issued: now}.encode(s.nonce)
	}
	s.writeBody(c, http.StatusOK, recordsAnswer(recs, next))
}

// checkIterator refuses an iterator that does not decode (valid false) or has expired by now.
func (s *Server) checkIterator(it iterator, valid bool, now time.Time) *APIError {
	if !valid {
		return validationf("Invalid ShardIterator")
	}
	if !now.Before(it.issued.Add(s.ttl)) {
		return apiError(http.StatusBadRequest, "ExpiredIteratorException",
			"Iterator expired. The iterator was created at time %s while right now it is %s.",
			it.issued.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// page returns the records from it's position on, at most limit of them and at most 1 MB (but
// always at least one record), and whether they end a closed shard.
func (s *Server) page(it iterator, limit int) (recs []storedRecord, finished bool, apiErr *APIError) {
	s.mu.RLock()
	st := s.streams[it.streamARN]
	var sh *shard
	if st != nil {
		sh = st.byID[it.shardID]
	}
	if sh == nil {
		s.mu.RUnlock()
		return nil, false, notFoundf("Requested resource not found: Shard: %s in Stream: %s not found", it.shardID, it.streamARN)
	}
	if it.pos < sh.trimmed {
		s.mu.RUnlock()
		return nil, false, apiError(http.StatusBadRequest, "TrimmedDataAccessException",
			"The operation attempted to read past the oldest stream record in a shard: the iterator of %s points to a trimmed record", it.shardID)
	}
	from := min(it.pos-sh.trimmed, len(sh.recs))
	recs = sh.recs[from:min(from+limit, len(sh.recs))] // immutable records: safe to use unlocked
	finished = sh.closed() && from+len(recs) == len(sh.recs)
	s.mu.RUnlock()

	size := 0
	for i, r := range recs {
		if size += len(r.wire); i > 0 && size > maxRecordsBytes {
			return recs[:i], false, nil
		}
	}
	return recs, finished, nil
}

// recordsAnswer is GetRecords' answer body: the records' wire JSON, and next unless it is "".
func recordsAnswer(recs []storedRecord, next string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.wire)
	}
	b.WriteByte(']')
	if next != "" {
		b.WriteString(`,"NextShardIterator":`)
		b.WriteString(strconv.Quote(next))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (s *Server) listStreams(c *call) {
	var in struct {
		TableName               string
		Limit                   *int
		ExclusiveStartStreamArn string
	}
	if !s.decode(c, &in) {
		return
	}
	if ok, _ := s.runHook(c, Request{}); !ok {
		return
	}
	limit, apiErr := checkLimit(in.Limit, maxStreamsLimit, maxStreamsLimit)
	if apiErr != nil {
		s.writeError(c, apiErr)
		return
	}
	type wireStream struct {
		StreamArn   string
		StreamLabel string
		TableName   string
	}
	out := struct {
		Streams                []wireStream
		LastEvaluatedStreamArn string `json:",omitempty"`
	}{Streams: []wireStream{}}
	s.mu.RLock()
	started := in.ExclusiveStartStreamArn == ""
	for _, st := range s.streamList {
		if !started {
			started = st.arn == in.ExclusiveStartStreamArn
			continue
		}
		if in.TableName != "" && st.table != in.TableName {
			continue
		}
		if len(out.Streams) == limit {
			out.LastEvaluatedStreamArn = out.Streams[limit-1].StreamArn
			break
		}
		out.Streams = append(out.Streams, wireStream{st.arn, st.label, st.table})
	}
	s.mu.RUnlock()
	s.writeJSON(c, out)
}

// serveDescribeTable answers DynamoDB's DescribeTable for a table with a stream here, and reports
// false (nothing sent) for other tables, which go upstream.
func (s *Server) serveDescribeTable(c *call) bool {
	var in struct{ TableName string }
	if err := json.Unmarshal(c.body, &in); err != nil {
		return false // upstream answers it, in its own words
	}
	s.mu.RLock()
	st := s.tables[in.TableName]
	s.mu.RUnlock()
	if st == nil {
		return false
	}
	if ok, _ := s.runHook(c, Request{StreamARN: st.arn}); !ok {
		return true
	}
	type attrDef struct{ AttributeName, AttributeType string }
	defs := make([]attrDef, len(st.keySchema))
	for i, k := range st.keySchema {
		defs[i] = attrDef{k.AttributeName, "S"}
	}
	type streamSpec struct {
		StreamEnabled  bool
		StreamViewType string `json:",omitempty"`
	}
	spec := streamSpec{StreamEnabled: true, StreamViewType: string(st.view)}
	s.mu.RLock()
	if !st.enabled {
		spec = streamSpec{StreamEnabled: false}
	}
	s.mu.RUnlock()
	s.writeJSON(c, map[string]any{"Table": map[string]any{
		"TableName":            st.table,
		"TableArn":             "arn:aws:dynamodb:" + s.region + ":" + s.account + ":table/" + st.table,
		"TableStatus":          "ACTIVE",
		"CreationDateTime":     epochSeconds(st.created),
		"KeySchema":            st.keySchema,
		"AttributeDefinitions": defs,
		"ItemCount":            0,
		"TableSizeBytes":       0,
		"BillingModeSummary":   map[string]any{"BillingMode": "PAY_PER_REQUEST"},
		"ProvisionedThroughput": map[string]any{
			"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0,
		},
		"StreamSpecification": spec,
		"LatestStreamArn":     st.arn,
		"LatestStreamLabel":   st.label,
	}})
	return true
}
