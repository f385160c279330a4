package sinks

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/poller-dev/poller/pkg/plugin"
)

func init() {
	Register("kinesis", nil, func(c *KinesisConfig, d Deps) (Sink, error) { return NewKinesis(*c, d) })
}

// kinesisLimits: PutRecords takes 500 records and 5 MiB in all; a record's data and partition key
// are at most 1 MiB.
var kinesisLimits = limits{count: 500, callBytes: 5 << 20, recordBytes: 1 << 20}

// KinesisConfig is the kinesis sink's config: one of StreamName and StreamARN.
type KinesisConfig struct {
	// StreamName is the data stream that receives one record per stream record.
	StreamName string `yaml:"stream_name"`
	// StreamARN is the data stream by ARN (a stream of another account).
	StreamARN    string `yaml:"stream_arn"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *ConfigError.
func (c *KinesisConfig) Validate() error {
	var errs []error
	switch {
	case c.StreamName == "" && c.StreamARN == "":
		errs = append(errs, &plugin.ConfigError{Key: "stream_name", Msg: "required (or stream_arn)"})
	case c.StreamName != "" && c.StreamARN != "":
		errs = append(errs, &plugin.ConfigError{Key: "stream_arn", Msg: "set stream_name or stream_arn, not both"})
	case c.StreamARN != "":
		errs = RequiredKey("stream_arn", c.StreamARN, isKinesisARN, "must be a Kinesis stream ARN such as arn:aws:kinesis:us-east-1:123456789012:stream/changes")
	}
	return c.Check(errs)
}

// isKinesisARN reports a Kinesis data stream ARN: arn:<partition>:kinesis:<region>:<account>:stream/<name>.
func isKinesisARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[2] == "kinesis" && strings.HasPrefix(p[5], "stream/") && len(p[5]) > len("stream/")
}

// kinesisAPI is the part of the Kinesis client the sink uses.
type kinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Kinesis puts each stream record, its JSON as in the event, as one Kinesis record whose
// PartitionKey is the partition key value, with PutRecords: one DynamoDB partition key's records
// go to one Kinesis shard, in order.
type Kinesis struct {
	name, arn string // immutable; one is set
	client    kinesisAPI
	fanout
}

var _ Sink = (*Kinesis)(nil)

// NewKinesis builds a kinesis sink. It does not contact Kinesis.
func NewKinesis(cfg KinesisConfig, deps Deps) (*Kinesis, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := &Kinesis{name: cfg.StreamName, arn: cfg.StreamARN, client: kinesis.NewFromConfig(cfg.ApplyARN(deps.AWS, cfg.StreamARN))}
	k.fanout = fanout{service: "Kinesis PutRecords to " + cfg.StreamName + cfg.StreamARN, lim: kinesisLimits, send: k.send,
		size: func(m *message) int { return len(m.body) + len(kinesisKey(m.key)) }}
	return k, nil
}

// kinesisKey is a partition key as Kinesis takes it: 1..256 Unicode characters.
func kinesisKey(key string) string { return fitKey(key, 256, func(rune) bool { return true }) }

// Deliver puts the batch's records in order; see fanout.deliver.
func (k *Kinesis) Deliver(ctx context.Context, b Batch) error { return k.deliver(ctx, b) }

// Close does nothing: the client holds no resources that need releasing.
func (k *Kinesis) Close(context.Context) error { return nil }

func (k *Kinesis) send(ctx context.Context, msgs []message) (int, error) {
	in := &kinesis.PutRecordsInput{Records: make([]kinesistypes.PutRecordsRequestEntry, len(msgs))}
	if k.arn != "" {
		in.StreamARN = aws.String(k.arn)
	} else {
		in.StreamName = aws.String(k.name)
	}
	for i, m := range msgs {
		in.Records[i] = kinesistypes.PutRecordsRequestEntry{Data: m.body, PartitionKey: aws.String(kinesisKey(m.key))}
	}
	out, err := k.client.PutRecords(ctx, in)
	if err != nil {
		return 0, awsError(err)
	}
	return firstFailedInOrder(len(msgs), out.Records, func(r kinesistypes.PutRecordsResultEntry) (code, msg *string) { return r.ErrorCode, r.ErrorMessage })
}
