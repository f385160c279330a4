package onfailure

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/poller-dev/poller/pkg/plugin"
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
	var errs []error
	if c.QueueURL == "" {
		errs = append(errs, &plugin.ConfigError{Key: "queue_url", Msg: "required"})
	} else if u, err := url.Parse(c.QueueURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &plugin.ConfigError{Key: "queue_url", Msg: fmt.Sprintf("must be an absolute https URL such as https://sqs.us-east-1.amazonaws.com/123456789012/failed, got %q", c.QueueURL)})
	}
	errs = append(errs, c.validate()...)
	return plugin.JoinConfigErrors(errs)
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
	return &SQS{queueURL: cfg.QueueURL, client: sqs.NewFromConfig(cfg.apply(deps.AWS))}, nil
}

// Send sends the report.
func (d *SQS) Send(ctx context.Context, f Failure) error {
	body, err := metadataMessage(f)
	if err != nil {
		return err
	}
	if _, err := d.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.queueURL), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("send report for %s to %s: %w", f.Batch.ShardID, d.queueURL, err)
	}
	return nil
}

// Close does nothing: the client holds no resources that need releasing.
func (d *SQS) Close(context.Context) error { return nil }
