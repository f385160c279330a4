package onfailure

import (
	"encoding/json"
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

func (o AWSOverrides) validate() []error {
	if o.EndpointURL == "" {
		return nil
	}
	if u, err := url.Parse(o.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []error{&plugin.ConfigError{Key: "endpoint_url", Msg: fmt.Sprintf("must be an absolute http or https URL, got %q", sinks.RedactURL(o.EndpointURL))}}
	}
	return nil
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

// metadataMessage returns the report without payload, as SQS and SNS messages carry it.
func metadataMessage(f Failure) (string, error) {
	rec, err := NewRecord(f, false)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode report for %s: %w", f.Batch.ShardID, err)
	}
	if len(b) > maxMessageBytes {
		return "", fmt.Errorf("report for %s is %d bytes, over the %d byte message limit", f.Batch.ShardID, len(b), maxMessageBytes)
	}
	return string(b), nil
}
