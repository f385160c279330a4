package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// The fan-out sinks (sqs, sns, kinesis, firehose, eventbridge) send a batch record by record: each
// record becomes one message of its service, and the messages go out in calls of the service's
// batch API, cut by its own limits (count, bytes per call, bytes per message), in order. A call the
// service answers with some entries failed stops the batch at the first failed entry: the messages
// before it are delivered, and the sink returns a *SendError at it, so that the failure policy
// retries from there, in order, and sends nothing before it again.

// message is one record as its service's message.
type message struct {
	body []byte // the record's JSON (plus "\n" for firehose)
	key  string // the partition key value, for services that order by it
	id   string // the record's eventID
	name string // the record's eventName
	seq  string // the record's sequence number, for errors
	size int    // what the message counts against the service's limits
}

// limits are a service's batch API limits.
type limits struct {
	count       int // messages per call
	callBytes   int // bytes per call
	recordBytes int // bytes per message
}

// fanout is the part every fan-out sink shares: how it turns records into messages and batches.
type fanout struct {
	service string // e.g. "SQS", for errors
	lim     limits
	newline bool // a message is the record's JSON plus "\n"
	// size is what a message counts against the limits; nil means its body's length.
	size func(m *message) int
	// onePerKey puts at most one message of each partition key in a call (FIFO queues and topics):
	// a call partly failed at a key's record then holds no later record of that key that the
	// service may have stored, which the retry's deduplication would leave ahead of it.
	onePerKey bool
	// send sends msgs in one call; it returns how many at the head the service stored and, when not
	// all, why the next one was not (marked with ErrThrottled for a throttle).
	send func(ctx context.Context, msgs []message) (int, error)
}

// deliver sends b's records, in calls of at most the service's limits, in order. It returns nil
// when every record was stored, and otherwise a *SendError at the first record not stored: over
// the service's size limit (ErrRecordTooLarge), or refused by the service.
func (f *fanout) deliver(ctx context.Context, b Batch) error {
	msgs, err := f.messages(b)
	if err != nil {
		return err
	}
	sizes, keys := make([]int, len(msgs)), []string(nil)
	if f.onePerKey {
		keys = make([]string, len(msgs))
	}
	for i := range msgs {
		sizes[i] = msgs[i].size
		if keys != nil {
			keys[i] = msgs[i].key
		}
	}
	for i := 0; i < len(msgs); {
		j := nextCall(sizes, keys, i, f.lim)
		if j == i {
			return &SendError{Sent: i, Err: fmt.Errorf("%w: %s message for record %s of %s is %d bytes, over the %d byte limit",
				ErrRecordTooLarge, f.service, msgs[i].seq, b.ShardID, sizes[i], f.lim.recordBytes)}
		}
		n, err := f.send(ctx, msgs[i:j])
		if err != nil {
			at := min(i+n, len(msgs)-1)
			return &SendError{Sent: at, Err: fmt.Errorf("%s: record %s of %s: %w", f.service, msgs[at].seq, b.ShardID, err)}
		}
		i = j
	}
	return nil
}

// messages turns b's records into messages, in order.
func (f *fanout) messages(b Batch) ([]message, error) {
	msgs := make([]message, len(b.Records))
	for i := range b.Records {
		r := &b.Records[i]
		body, err := b.AppendRecordJSON(nil, i)
		if err != nil {
			return nil, err
		}
		if f.newline {
			body = append(body, '\n')
		}
		m := &msgs[i]
		*m = message{body: body, key: partitionKey(r, b.HashKey), id: r.EventID, name: r.EventName, seq: r.Change.SequenceNumber}
		m.size = len(body)
		if f.size != nil {
			m.size = f.size(m)
		}
	}
	return msgs, nil
}

// nextCall returns the end (exclusive) of the call that starts at message from: as many messages
// as fit in one call (at most lim.count, at most lim.callBytes in all), stopping before a message
// over lim.recordBytes and, when keys is not nil, before a message whose key the call already
// has. It returns from itself when the message at from is over lim.recordBytes (or alone over
// lim.callBytes): that message can never be sent.
func nextCall(sizes []int, keys []string, from int, lim limits) int {
	total, j := 0, from
	for j < len(sizes) && j-from < lim.count {
		s := sizes[j]
		if s > lim.recordBytes || total+s > lim.callBytes || keys != nil && slices.Contains(keys[from:j], keys[j]) {
			break
		}
		total += s
		j++
	}
	return j
}

// partitionKey returns the value of r's partition key attribute (hashKey, the table's; "" when
// unknown), as text: a string as is, a number as written, binary in base64. Without a known
// attribute, a record with a single key attribute uses it, and one with two (partition and sort
// key) uses both, as JSON: that keeps each item in order, which is the order Lambda guarantees.
func partitionKey(r *events.DynamoDBEventRecord, hashKey string) string {
	if v, ok := r.Change.Keys[hashKey]; ok && hashKey != "" {
		return attrText(v)
	}
	if len(r.Change.Keys) == 1 {
		for _, v := range r.Change.Keys {
			return attrText(v)
		}
	}
	j, err := json.Marshal(r.Change.Keys) // map keys sorted: the same item gives the same text
	if err != nil {
		// Keys the event could carry always encode; should one not, every such record shares
		// one key, which orders them all: stricter, never looser.
		return ""
	}
	return string(j)
}

// attrText is a key attribute's value as text.
func attrText(v events.DynamoDBAttributeValue) string {
	switch v.DataType() {
	case events.DataTypeString:
		return v.String()
	case events.DataTypeNumber:
		return v.Number()
	case events.DataTypeBinary:
		return base64.StdEncoding.EncodeToString(v.Binary())
	}
	// A key attribute is a string, a number or binary; anything else is written as its JSON, and
	// the empty text of one that cannot be encoded still maps one key to one value.
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(j)
}

// fitKey returns key when it is 1..maxLen characters, each allowed; otherwise a digest of it
// ("sha256-" and 64 hex digits), which is as good for ordering: one key, one value.
func fitKey(key string, maxLen int, allowed func(rune) bool) string {
	ok := key != "" && utf8.RuneCountInString(key) <= maxLen
	for _, c := range key {
		if !ok {
			break
		}
		ok = allowed(c)
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256-" + hex.EncodeToString(sum[:])
}

// throttleCodes are the error codes with which the services refuse a call or an entry for its
// rate, before storing it: they are retried without using up max_retry_attempts.
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true, "Throttled": true,
	"RequestThrottled": true, "RequestThrottledException": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "SlowDown": true, // generic, and S3's
	"KmsThrottled": true, "KMSThrottling": true, "KMSThrottlingException": true, // SQS, SNS, Kinesis
	"ProvisionedThroughputExceededException": true, // Kinesis
	"ServiceUnavailableException":            true, // Firehose
}

// awsError marks err with ErrThrottled when it is a service's throttle (throttleCodes).
func awsError(err error) error {
	if ae, ok := errors.AsType[smithy.APIError](err); ok && throttleCodes[ae.ErrorCode()] {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	return err
}

// entryError is the error of an entry a batch call answered as failed, marked with ErrThrottled
// when its code is a throttle.
func entryError(code, msg string) error {
	err := fmt.Errorf("entry failed: %s: %s", code, msg)
	if throttleCodes[code] {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	return err
}

// entryID is the id of message i of a call, for the SQS and SNS batch APIs.
func entryID(i int) string { return strconv.Itoa(i) }

// firstFailedInOrder returns the index of the first message of a call of n that the answer lists as
// failed, with its error, for the answers of Kinesis, Firehose and EventBridge, whose entries come one
// per message in the call's order; n when all were stored. failure gives an entry's error code and
// message (a nil code: stored).
func firstFailedInOrder[E any](n int, entries []E, failure func(E) (code, msg *string)) (int, error) {
	if len(entries) != n {
		return 0, errors.New("answer does not have one entry per message")
	}
	for i, e := range entries {
		if code, msg := failure(e); code != nil {
			return i, entryError(aws.ToString(code), aws.ToString(msg))
		}
	}
	return n, nil
}

// firstFailedID returns the index of the first message of a call of n that the answer does not
// list as stored, with its error, for SQS's and SNS's answers by entry id; n when all were. stored
// and failed are the answer's entries; id gives a stored entry's id, failure a failed entry's id,
// code and message.
func firstFailedID[S, F any](n int, stored []S, failed []F, id func(S) *string, failure func(F) (id, code, msg *string)) (int, error) {
	ok := make(map[string]bool, len(stored))
	for _, e := range stored {
		ok[aws.ToString(id(e))] = true
	}
	bad := make(map[string]error, len(failed))
	for _, e := range failed {
		fid, code, msg := failure(e)
		bad[aws.ToString(fid)] = entryError(aws.ToString(code), aws.ToString(msg))
	}
	for i := range n {
		if err, isBad := bad[entryID(i)]; isBad {
			return i, err
		}
		if !ok[entryID(i)] {
			return i, errors.New("entry neither stored nor failed in the answer")
		}
	}
	return n, nil
}
