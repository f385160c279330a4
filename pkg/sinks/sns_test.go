package sinks

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// snsAnswer is a narrow stand-in for SNS's PublishBatch answer (moto cannot fail single entries;
// the e2e tests cover the other services' answers through a proxy): it stores every entry but
// those listed in failed, which it answers with their code.
type snsAnswer struct {
	failed map[string]string // entry id -> code
	got    *sns.PublishBatchInput
}

func (a *snsAnswer) PublishBatch(_ context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	a.got = in
	out := &sns.PublishBatchOutput{}
	for _, e := range in.PublishBatchRequestEntries {
		if code, bad := a.failed[aws.ToString(e.Id)]; bad {
			out.Failed = append(out.Failed, snstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String(code), Message: aws.String("m")})
			continue
		}
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// A PublishBatch answered with entries 2 and 4 failed stops at entry 2, a throttle when its code
// is Throttled; FIFO entries carry the partition key and eventID, every entry its eventName.
func TestSNSPartlyFailedPublishBatch(t *testing.T) {
	tests := []struct {
		name      string
		failed    map[string]string
		wantSent  int
		throttled bool
	}{
		{"a failed entry stops the batch at it", map[string]string{"4": "InternalError", "2": "InternalError"}, 2, false},
		{"a throttled entry is a throttle", map[string]string{"2": "Throttled"}, 2, true},
		{"no failed entry sends all", nil, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &snsAnswer{failed: tt.failed}
			s := &SNS{topicARN: "arn:aws:sns:us-east-1:1:t.fifo", fifo: true, client: a}
			n, err := s.send(t.Context(), mustMessages(t, testBatch("s", 5)))
			if n != tt.wantSent || (err != nil) != (tt.failed != nil) || IsThrottled(err) != tt.throttled {
				t.Errorf("send() = %d, %v; want %d, throttled %v", n, err, tt.wantSent, tt.throttled)
			}
			e := a.got.PublishBatchRequestEntries[1]
			if aws.ToString(e.MessageGroupId) != "s-1" || aws.ToString(e.MessageDeduplicationId) != "id-s-1" ||
				aws.ToString(e.MessageAttributes["eventName"].StringValue) != "INSERT" {
				t.Errorf("entry 1 = group %q, dedup %q, eventName %q", aws.ToString(e.MessageGroupId),
					aws.ToString(e.MessageDeduplicationId), aws.ToString(e.MessageAttributes["eventName"].StringValue))
			}
		})
	}
}

func mustMessages(t *testing.T, b Batch) []message {
	t.Helper()
	f := fanout{}
	msgs, err := f.messages(b)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
