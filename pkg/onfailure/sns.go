package onfailure

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/poller-dev/poller/pkg/sinks"
)

func init() {
	Register("sns", nil, func(c *SNSConfig, d Deps) (Destination, error) { return NewSNS(*c, d) })
}

// SNSConfig is the sns destination's config.
type SNSConfig struct {
	// TopicARN is the standard topic that receives the reports; required.
	TopicARN     string `yaml:"topic_arn"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *plugin.ConfigError.
func (c *SNSConfig) Validate() error {
	return c.Check(sinks.RequiredKey("topic_arn", c.TopicARN, sinks.IsTopicARN,
		"must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:failed"))
}

// snsAPI is the part of the SNS client the destination uses.
type snsAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes each report, without payload, as one message: the JSON record.
type SNS struct {
	topicARN string // immutable
	client   snsAPI
}

var _ Destination = (*SNS)(nil)

// NewSNS builds an sns destination. Without a region key, the topic's region is used when the
// poller's region is unset. It does not contact SNS.
func NewSNS(cfg SNSConfig, deps Deps) (*SNS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SNS{topicARN: cfg.TopicARN, client: sns.NewFromConfig(cfg.ApplyARN(deps.AWS, cfg.TopicARN))}, nil
}

// Send publishes the report.
func (d *SNS) Send(ctx context.Context, f Failure) error {
	return sendMessage(ctx, f, "publish", d.topicARN, func(ctx context.Context, msg *string) error {
		_, err := d.client.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(d.topicARN), Message: msg})
		return err
	})
}

// Close does nothing: the client holds no resources that need releasing.
func (d *SNS) Close(context.Context) error { return nil }
