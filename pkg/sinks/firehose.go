package sinks

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	firehosetypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
)

func init() {
	Register("firehose", nil, func(c *FirehoseConfig, d Deps) (Sink, error) { return NewFirehose(*c, d) })
}

// firehoseLimits: PutRecordBatch takes 500 records and 4 MiB in all; a record is at most 1,000 KiB.
var firehoseLimits = limits{count: 500, callBytes: 4 << 20, recordBytes: 1000 * 1024}

// FirehoseConfig is the firehose sink's config.
type FirehoseConfig struct {
	// DeliveryStream is the Firehose stream's name; required.
	DeliveryStream string `yaml:"delivery_stream"`
	AWSOverrides   `yaml:",inline"`
}

// Validate checks every key; errors are *ConfigError.
func (c *FirehoseConfig) Validate() error {
	return c.Check(RequiredKey("delivery_stream", c.DeliveryStream, func(string) bool { return true }, ""))
}

// firehoseAPI is the part of the Firehose client the sink uses.
type firehoseAPI interface {
	PutRecordBatch(ctx context.Context, in *firehose.PutRecordBatchInput, opts ...func(*firehose.Options)) (*firehose.PutRecordBatchOutput, error)
}

// Firehose puts each stream record, its JSON as in the event plus "\n" (so the objects Firehose
// writes are JSON Lines), as one Firehose record, with PutRecordBatch.
type Firehose struct {
	stream string // immutable
	client firehoseAPI
	fanout
}

var _ Sink = (*Firehose)(nil)

// NewFirehose builds a firehose sink. It does not contact Firehose.
func NewFirehose(cfg FirehoseConfig, deps Deps) (*Firehose, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Firehose{stream: cfg.DeliveryStream, client: firehose.NewFromConfig(cfg.Apply(deps.AWS))}
	f.fanout = fanout{service: "Firehose PutRecordBatch to " + cfg.DeliveryStream, lim: firehoseLimits, newline: true, send: f.send}
	return f, nil
}

// Deliver puts the batch's records in order; see fanout.deliver.
func (f *Firehose) Deliver(ctx context.Context, b Batch) error { return f.deliver(ctx, b) }

// Close does nothing: the client holds no resources that need releasing.
func (f *Firehose) Close(context.Context) error { return nil }

func (f *Firehose) send(ctx context.Context, msgs []message) (int, error) {
	in := &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(f.stream), Records: make([]firehosetypes.Record, len(msgs))}
	for i, m := range msgs {
		in.Records[i] = firehosetypes.Record{Data: m.body}
	}
	out, err := f.client.PutRecordBatch(ctx, in)
	if err != nil {
		return 0, awsError(err)
	}
	return firstFailedInOrder(len(msgs), out.RequestResponses, func(r firehosetypes.PutRecordBatchResponseEntry) (code, msg *string) {
		return r.ErrorCode, r.ErrorMessage
	})
}
