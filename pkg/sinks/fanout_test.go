package sinks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/smithy-go"
)

func TestNextCall(t *testing.T) {
	lim := limits{count: 3, callBytes: 100, recordBytes: 60}
	tests := []struct {
		name  string
		sizes []int
		keys  []string
		from  int
		want  int
	}{
		{"small messages fill a call up to the count", []int{1, 1, 1, 1, 1}, nil, 0, 3},
		{"the last call takes what is left", []int{1, 1, 1, 1, 1}, nil, 3, 5},
		{"a call stops before the message that would pass the bytes per call", []int{40, 40, 40}, nil, 0, 2},
		{"messages exactly filling the bytes per call go together", []int{50, 50}, nil, 0, 2},
		{"a call stops before a message over the bytes per message", []int{10, 61, 10}, nil, 0, 1},
		{"a message over the bytes per message cannot be sent: the call is empty", []int{10, 61, 10}, nil, 1, 1},
		{"a message exactly at the bytes per message is sent", []int{60}, nil, 0, 1},
		{"an empty message still counts against the count", []int{0, 0, 0, 0}, nil, 0, 3},
		{"with keys a call stops before a key it already has", []int{1, 1, 1}, []string{"a", "b", "a"}, 0, 2},
		{"with keys distinct keys fill a call", []int{1, 1, 1}, []string{"a", "b", "c"}, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextCall(tt.sizes, tt.keys, tt.from, lim); got != tt.want {
				t.Errorf("nextCall(%v, %d) = %d, want %d", tt.sizes, tt.from, got, tt.want)
			}
		})
	}
}

// FuzzNextCall: the calls nextCall cuts cover the messages in order, each within the limits, each as
// large as the limits allow, and they stop only at a message that can never be sent.
func FuzzNextCall(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 4}, uint8(3), uint8(100), uint8(60))
	f.Add([]byte{}, uint8(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, count, callBytes, recordBytes uint8) {
		lim := limits{count: int(count%20) + 1, callBytes: int(callBytes) + 1, recordBytes: int(recordBytes) + 1}
		sizes := make([]int, len(raw))
		for i, b := range raw {
			sizes[i] = int(b)
		}
		for from := 0; from < len(sizes); {
			j := nextCall(sizes, nil, from, lim)
			if j == from {
				if sizes[from] <= lim.recordBytes && sizes[from] <= lim.callBytes {
					t.Fatalf("nextCall(%v, %d, %+v) = empty call before a message that fits", sizes, from, lim)
				}
				from++ // the policy takes that message out and sends the rest
				continue
			}
			total := 0
			for _, s := range sizes[from:j] {
				total += s
				if s > lim.recordBytes {
					t.Fatalf("call %v takes a message over %d bytes", sizes[from:j], lim.recordBytes)
				}
			}
			if j-from > lim.count || total > lim.callBytes {
				t.Fatalf("call %v passes the limits %+v", sizes[from:j], lim)
			}
			if j < len(sizes) && j-from < lim.count && total+sizes[j] <= lim.callBytes && sizes[j] <= lim.recordBytes {
				t.Fatalf("call %v stops before %d, which fits", sizes[from:j], sizes[j])
			}
			from = j
		}
	})
}

// callLog is a fanout's send that stores the record sequence numbers of each call and answers
// call n (from 1) with answers[n]: how many it stored, and why not the next one.
type callLog struct {
	calls   [][]string
	answers map[int]func(n int) (int, error)
}

func (c *callLog) send(_ context.Context, msgs []message) (int, error) {
	var seqs []string
	for _, m := range msgs {
		seqs = append(seqs, m.seq)
	}
	c.calls = append(c.calls, seqs)
	if a := c.answers[len(c.calls)]; a != nil {
		return a(len(msgs))
	}
	return len(msgs), nil
}

func TestFanoutDeliver(t *testing.T) {
	b := testBatch("s", 25)
	one := len(mustJSON(t, b, 0))
	throttle := func(at int) func(int) (int, error) {
		return func(int) (int, error) {
			return at, fmt.Errorf("%w: ProvisionedThroughputExceededException", ErrThrottled)
		}
	}
	tests := []struct {
		name      string
		lim       limits
		big       int // index of a record made larger than recordBytes; -1 none
		answers   map[int]func(int) (int, error)
		wantCalls []int // sizes of the calls
		wantSent  int   // SendError.Sent; -1 for nil
		throttled bool
		tooLarge  bool
	}{
		{"25 records go in calls of 10 by count", limits{count: 10, callBytes: 1 << 20, recordBytes: 1 << 20}, -1, nil,
			[]int{10, 10, 5}, -1, false, false},
		{"25 records go in calls of 4 by bytes", limits{count: 10, callBytes: 4*one + one/2, recordBytes: 1 << 20}, -1, nil,
			[]int{4, 4, 4, 4, 4, 4, 1}, -1, false, false},
		{"a call whose entry 3 was throttled stops the batch there", limits{count: 10, callBytes: 1 << 20, recordBytes: 1 << 20}, -1,
			map[int]func(int) (int, error){2: throttle(3)}, []int{10, 10}, 13, true, false},
		{"a record over the message limit ends the batch before it, unsent", limits{count: 10, callBytes: 1 << 20, recordBytes: 2 * one}, 12, nil,
			[]int{10, 2}, 12, false, true},
		{"a call refused as a whole reports the first record of the call", limits{count: 10, callBytes: 1 << 20, recordBytes: 1 << 20}, -1,
			map[int]func(int) (int, error){1: func(int) (int, error) { return 0, errors.New("AccessDenied") }}, []int{10}, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch("s", 25)
			if tt.big >= 0 {
				b.Records[tt.big].Change.NewImage["pad"] = events.NewStringAttribute(strings.Repeat("x", 3*one))
			}
			log := &callLog{answers: tt.answers}
			f := fanout{service: "test", lim: tt.lim, send: log.send}
			err := f.deliver(t.Context(), b)
			var sizes []int
			next := 0
			for _, c := range log.calls {
				sizes = append(sizes, len(c))
				if c[0] != b.Records[next].Change.SequenceNumber {
					t.Errorf("a call starts at %s, want %s: calls must follow each other in order", c[0], b.Records[next].Change.SequenceNumber)
				}
				next += len(c)
			}
			if !slices.Equal(sizes, tt.wantCalls) {
				t.Errorf("call sizes = %v, want %v", sizes, tt.wantCalls)
			}
			se, ok := errors.AsType[*SendError](err)
			switch {
			case tt.wantSent < 0 && err != nil:
				t.Fatalf("deliver() = %v, want nil", err)
			case tt.wantSent >= 0 && (!ok || se.Sent != tt.wantSent):
				t.Fatalf("deliver() = %v, want a *SendError at %d", err, tt.wantSent)
			}
			if IsThrottled(err) != tt.throttled || IsRecordTooLarge(err) != tt.tooLarge {
				t.Errorf("deliver() = %v: throttled %v, too large %v; want %v, %v", err, IsThrottled(err), IsRecordTooLarge(err), tt.throttled, tt.tooLarge)
			}
		})
	}
}

func mustJSON(t *testing.T, b Batch, i int) []byte {
	t.Helper()
	j, err := b.AppendRecordJSON(nil, i)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestPartitionKey(t *testing.T) {
	rec := func(keys map[string]events.DynamoDBAttributeValue) *events.DynamoDBEventRecord {
		return &events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{Keys: keys}}
	}
	pkSK := map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("user#1"), "sk": events.NewNumberAttribute("7")}
	tests := []struct {
		name    string
		r       *events.DynamoDBEventRecord
		hashKey string
		want    string
	}{
		{"a string partition key is its value", rec(pkSK), "pk", "user#1"},
		{"a number partition key is the number as written", rec(pkSK), "sk", "7"},
		{"a binary partition key is base64", rec(map[string]events.DynamoDBAttributeValue{"b": events.NewBinaryAttribute([]byte{0xff, 0})}), "b", "/wA="},
		{"an unknown key schema with one key attribute uses it", rec(map[string]events.DynamoDBAttributeValue{"id": events.NewStringAttribute("a")}), "", "a"},
		{"an unknown key schema with two uses the whole item key", rec(pkSK), "", `{"pk":{"S":"user#1"},"sk":{"N":"7"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := partitionKey(tt.r, tt.hashKey); got != tt.want {
				t.Errorf("partitionKey() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFitKey(t *testing.T) {
	long := strings.Repeat("k", 129)
	tests := []struct {
		name, key string
		want      func(string) bool
	}{
		{"a short printable key is kept", "user#1", func(s string) bool { return s == "user#1" }},
		{"a key too long becomes its digest", long, func(s string) bool { return strings.HasPrefix(s, "sha256-") && len(s) == 71 }},
		{"a key with a space becomes its digest", "a b", func(s string) bool { return strings.HasPrefix(s, "sha256-") }},
		{"an empty key becomes a digest", "", func(s string) bool { return strings.HasPrefix(s, "sha256-") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitKey(tt.key, 128, isMessageGroupChar)
			if !tt.want(got) {
				t.Errorf("fitKey(%q) = %q", tt.key, got)
			}
			if got != fitKey(tt.key, 128, isMessageGroupChar) {
				t.Errorf("fitKey(%q) is not deterministic", tt.key)
			}
		})
	}
}

func TestAWSErrorMarksThrottles(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"ProvisionedThroughputExceededException", true}, {"ServiceUnavailableException", true},
		{"ThrottlingException", true}, {"RequestThrottled", true}, {"Throttled", true}, {"SlowDown", true},
		{"AccessDeniedException", false}, {"InternalFailure", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := awsError(&smithy.GenericAPIError{Code: tt.code})
			if IsThrottled(err) != tt.want || IsThrottled(entryError(tt.code, "m")) != tt.want {
				t.Errorf("%s: throttled = %v, want %v", tt.code, IsThrottled(err), tt.want)
			}
		})
	}
}

func TestS3KeyIsTheBatchsOwn(t *testing.T) {
	b := testBatch("1", 3)
	b.Pipeline, b.ShardID = "orders", "shardId-000001"
	b.Records[0].Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: time.Date(2026, 11, 28, 23, 59, 0, 0, time.FixedZone("x", 3600))}
	want := "audit/orders/2026/11/28/22/shardId-000001-1-0-1-2.json"
	for _, prefix := range []string{"audit", "audit/"} {
		if got := S3Key(prefix, b); got != want {
			t.Errorf("S3Key(%q) = %q, want %q", prefix, got, want)
		}
	}
	if got := S3Key("", b); got != strings.TrimPrefix(want, "audit/") {
		t.Errorf("S3Key(\"\") = %q", got)
	}
}

// For FIFO queues and topics a call holds one record per partition key, so that a call partly
// failed at a key's record holds no later record of that key.
func TestFanoutOnePerKey(t *testing.T) {
	b := testBatch("s", 6)
	b.HashKey = "Id"
	for i := range b.Records {
		b.Records[i].Change.Keys = map[string]events.DynamoDBAttributeValue{"Id": events.NewStringAttribute(fmt.Sprint("k", i%2))}
	}
	log := &callLog{}
	f := fanout{service: "test", lim: sqsLimits, onePerKey: true, send: log.send}
	if err := f.deliver(t.Context(), b); err != nil {
		t.Fatalf("deliver() = %v", err)
	}
	want := [][]string{{"s-0", "s-1"}, {"s-2", "s-3"}, {"s-4", "s-5"}}
	if !slices.EqualFunc(log.calls, want, slices.Equal) {
		t.Errorf("calls = %v, want %v", log.calls, want)
	}
}
