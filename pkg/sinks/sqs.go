package sinks

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func init() {
	Register("sqs", nil, func(c *SQSConfig, d Deps) (Sink, error) { return NewSQS(*c, d) })
}

// sqsLimits: SendMessageBatch takes 10 messages of at most 256 KiB each and 256 KiB in all. (AWS
// raised the message limit to 1 MiB in 2025; 256 KiB is what every queue and emulator accepts, and
// what poller documents.)
var sqsLimits = limits{count: 10, callBytes: 256 * 1024, recordBytes: 256 * 1024}

// SQSConfig is the sqs sink's config.
type SQSConfig struct {
	// QueueURL is the queue that receives one message per record; required. A FIFO queue (its
	// name ends in .fifo) gets MessageGroupId = the record's partition key value and
	// MessageDeduplicationId = its eventID.
	QueueURL     string `yaml:"queue_url"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *ConfigError.
func (c *SQSConfig) Validate() error {
	return c.Check(RequiredKey("queue_url", c.QueueURL, IsHTTPURL,
		"must be an absolute https URL such as https://sqs.us-east-1.amazonaws.com/123456789012/changes"))
}

// sqsAPI is the part of the SQS client the sink uses.
type sqsAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS sends each record, its JSON as in the event, as one message, with SendMessageBatch.
type SQS struct {
	queueURL string // immutable
	fifo     bool
	client   sqsAPI
	fanout
}

var _ Sink = (*SQS)(nil)

// NewSQS builds an sqs sink. It does not contact SQS.
func NewSQS(cfg SQSConfig, deps Deps) (*SQS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &SQS{queueURL: cfg.QueueURL, fifo: strings.HasSuffix(cfg.QueueURL, ".fifo"),
		client: sqs.NewFromConfig(cfg.Apply(deps.AWS))}
	s.fanout = fanout{service: "SQS SendMessageBatch to " + RedactURL(cfg.QueueURL), lim: sqsLimits, send: s.send, onePerKey: s.fifo}
	return s, nil
}

// Deliver sends the batch's records in order; see fanout.deliver.
func (s *SQS) Deliver(ctx context.Context, b Batch) error { return s.deliver(ctx, b) }

// Close does nothing: the client holds no resources that need releasing.
func (s *SQS) Close(context.Context) error { return nil }

func (s *SQS) send(ctx context.Context, msgs []message) (int, error) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: make([]sqstypes.SendMessageBatchRequestEntry, len(msgs))}
	for i, m := range msgs {
		e := &in.Entries[i]
		e.Id, e.MessageBody = aws.String(entryID(i)), aws.String(string(m.body))
		if s.fifo {
			e.MessageGroupId = aws.String(fitKey(m.key, 128, isMessageGroupChar))
			e.MessageDeduplicationId = aws.String(fitKey(m.id, 128, isMessageGroupChar))
		}
	}
	out, err := s.client.SendMessageBatch(ctx, in)
	if err != nil {
		return 0, awsError(err)
	}
	return firstFailedID(len(msgs), out.Successful, out.Failed,
		func(e sqstypes.SendMessageBatchResultEntry) *string { return e.Id },
		func(e sqstypes.BatchResultErrorEntry) (id, code, msg *string) { return e.Id, e.Code, e.Message })
}

// isMessageGroupChar reports a character SQS and SNS allow in a message group or deduplication
// id: printable ASCII but the space.
func isMessageGroupChar(c rune) bool { return c >= '!' && c <= '~' }
