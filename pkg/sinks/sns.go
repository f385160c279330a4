package sinks

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

func init() {
	Register("sns", nil, func(c *SNSConfig, d Deps) (Sink, error) { return NewSNS(*c, d) })
}

// snsLimits: PublishBatch takes 10 messages, 256 KiB in all, a message's attributes included.
var snsLimits = limits{count: 10, callBytes: 256 * 1024, recordBytes: 256 * 1024}

// SNSConfig is the sns sink's config.
type SNSConfig struct {
	// TopicARN is the topic that receives one message per record; required. A FIFO topic (its name
	// ends in .fifo) gets MessageGroupId = the record's partition key value and
	// MessageDeduplicationId = its eventID.
	TopicARN     string `yaml:"topic_arn"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *ConfigError.
func (c *SNSConfig) Validate() error {
	return c.Check(RequiredKey("topic_arn", c.TopicARN, IsTopicARN,
		"must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:changes"))
}

// IsTopicARN reports an SNS topic ARN: arn:<partition>:sns:<region>:<account>:<name>.
func IsTopicARN(s string) bool {
	p := strings.Split(s, ":")
	return len(p) == 6 && p[0] == "arn" && p[2] == "sns" && p[5] != ""
}

// snsAPI is the part of the SNS client the sink uses.
type snsAPI interface {
	PublishBatch(ctx context.Context, in *sns.PublishBatchInput, opts ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
}

// SNS publishes each record, its JSON as in the event, as one message with the message attribute
// eventName, with PublishBatch.
type SNS struct {
	topicARN string // immutable
	fifo     bool
	client   snsAPI
	fanout
}

var _ Sink = (*SNS)(nil)

// NewSNS builds an sns sink. Without a region key, the topic's region is used when the poller's
// region is unset. It does not contact SNS.
func NewSNS(cfg SNSConfig, deps Deps) (*SNS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &SNS{topicARN: cfg.TopicARN, fifo: strings.HasSuffix(cfg.TopicARN, ".fifo"), client: sns.NewFromConfig(cfg.ApplyARN(deps.AWS, cfg.TopicARN))}
	s.fanout = fanout{service: "SNS PublishBatch to " + cfg.TopicARN, lim: snsLimits, send: s.send, size: snsSize, onePerKey: s.fifo}
	return s, nil
}

// snsSize counts the message and its eventName attribute (name, type and value), as SNS does.
func snsSize(m *message) int {
	return len(m.body) + len("eventName") + len("String") + len(m.name)
}

// Deliver publishes the batch's records in order; see fanout.deliver.
func (s *SNS) Deliver(ctx context.Context, b Batch) error { return s.deliver(ctx, b) }

// Close does nothing: the client holds no resources that need releasing.
func (s *SNS) Close(context.Context) error { return nil }

func (s *SNS) send(ctx context.Context, msgs []message) (int, error) {
	in := &sns.PublishBatchInput{TopicArn: aws.String(s.topicARN), PublishBatchRequestEntries: make([]snstypes.PublishBatchRequestEntry, len(msgs))}
	for i, m := range msgs {
		e := &in.PublishBatchRequestEntries[i]
		e.Id, e.Message = aws.String(entryID(i)), aws.String(string(m.body))
		if m.name != "" {
			e.MessageAttributes = map[string]snstypes.MessageAttributeValue{
				"eventName": {DataType: aws.String("String"), StringValue: aws.String(m.name)}}
		}
		if s.fifo {
			e.MessageGroupId = aws.String(fitKey(m.key, 128, isMessageGroupChar))
			e.MessageDeduplicationId = aws.String(fitKey(m.id, 128, isMessageGroupChar))
		}
	}
	out, err := s.client.PublishBatch(ctx, in)
	if err != nil {
		return 0, awsError(err)
	}
	return firstFailedID(len(msgs), out.Successful, out.Failed,
		func(e snstypes.PublishBatchResultEntry) *string { return e.Id },
		func(e snstypes.BatchResultErrorEntry) (id, code, msg *string) { return e.Id, e.Code, e.Message })
}
