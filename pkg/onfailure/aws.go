package onfailure

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/poller-dev/poller/pkg/plugin"
	"github.com/poller-dev/poller/pkg/sinks"
)

// maxMessageBytes is the SQS and SNS message size limit (256 KB), which is why, as with Lambda, their
// reports carry no payload.
const maxMessageBytes = 256 * 1024

// AWSOverrides are the keys every AWS-backed destination has besides its own.
type AWSOverrides struct {
	// Region overrides the poller's AWS region for this destination; default: the poller's.
	Region string `yaml:"region"`
	// EndpointURL sends this destination's requests to another endpoint (moto, LocalStack, a VPC
	// endpoint); default: the service's own. (aws.endpoint_url is for DynamoDB only.)
	EndpointURL string `yaml:"endpoint_url"`
}

// validate checks the overrides after a destination's own keys (errs) and joins all the errors.
func (o AWSOverrides) validate(errs []error) error {
	if o.EndpointURL != "" && !isHTTPURL(o.EndpointURL) {
		errs = append(errs, &plugin.ConfigError{Key: "endpoint_url", Msg: fmt.Sprintf("must be an absolute http or https URL, got %q", sinks.RedactURL(o.EndpointURL))})
	}
	return plugin.JoinConfigErrors(errs)
}

// required checks a destination's required key: set, and valid by ok; must says what a valid
// value is, e.g. "must be an SNS topic ARN such as ...".
func required(key, value string, ok func(string) bool, must string) []error {
	switch {
	case value == "":
		return []error{&plugin.ConfigError{Key: key, Msg: "required"}}
	case !ok(value):
		return []error{&plugin.ConfigError{Key: key, Msg: fmt.Sprintf("%s, got %q", must, value)}}
	}
	return nil
}

// isHTTPURL reports an absolute http or https URL.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// apply returns the SDK config with the overrides in place. The SDK config is copied: the caller's
// stays as it was.
func (o AWSOverrides) apply(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	if o.Region != "" {
		cfg.Region = o.Region
	}
	if o.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(o.EndpointURL)
	}
	return cfg
}

// sendMessage sends the report of f, without payload, as one message (the JSON record) with send:
// how the sqs and sns destinations send. verb and to name the call in its error.
func sendMessage(ctx context.Context, f Failure, verb, to string, send func(ctx context.Context, body *string) error) error {
	body, err := metadataMessage(f)
	if err != nil {
		return err
	}
	if err := send(ctx, aws.String(body)); err != nil {
		return fmt.Errorf("%s report for %s to %s: %w", verb, f.Batch.ShardID, to, err)
	}
	return nil
}

// metadataMessage returns the report without payload, as SQS and SNS messages carry it.
func metadataMessage(f Failure) (string, error) {
	b, err := encode(f, false)
	if err != nil {
		return "", err
	}
	if len(b) > maxMessageBytes {
		return "", fmt.Errorf("report for %s is %d bytes, over the %d byte message limit", f.Batch.ShardID, len(b), maxMessageBytes)
	}
	return string(b), nil
}
