package onfailure

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/poller-dev/poller/pkg/sinks"
)

func init() {
	Register("sqs", nil, func(c *SQSConfig, d Deps) (Destination, error) { return NewSQS(*c, d) })
}

// SQSConfig is the sqs destination's config.
type SQSConfig struct {
	// QueueURL is the standard queue that receives the reports; required.
	QueueURL     string `yaml:"queue_url"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *plugin.ConfigError.
func (c *SQSConfig) Validate() error {
	return c.Check(sinks.RequiredKey("queue_url", c.QueueURL, sinks.IsHTTPURL,
		"must be an absolute https URL such as https://sqs.us-east-1.amazonaws.com/123456789012/failed"))
}

// sqsAPI is the part of the SQS client the destination uses.
type sqsAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SQS sends each report, without payload, as one message: the body is the JSON record.
type SQS struct {
	queueURL string // immutable
	client   sqsAPI
}

var _ Destination = (*SQS)(nil)

// NewSQS builds an sqs destination. It does not contact SQS.
func NewSQS(cfg SQSConfig, deps Deps) (*SQS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SQS{queueURL: cfg.QueueURL, client: sqs.NewFromConfig(cfg.Apply(deps.AWS))}, nil
}

// Send sends the report.
func (d *SQS) Send(ctx context.Context, f Failure) error {
	return sendMessage(ctx, f, "send", d.queueURL, func(ctx context.Context, body *string) error {
		_, err := d.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.queueURL), MessageBody: body})
		return err
	})
}

// Close does nothing: the client holds no resources that need releasing.
func (d *SQS) Close(context.Context) error { return nil }
