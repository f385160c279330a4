package sinks

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/poller-dev/poller/pkg/plugin"
)

// AWSOverrides are the keys every AWS-backed sink and on_failure destination has besides its own
// (embed it with `yaml:",inline"`): the one place where their SDK config is made from the poller's.
type AWSOverrides struct {
	// Region overrides the poller's AWS region for this sink or destination; default: the poller's.
	Region string `yaml:"region"`
	// EndpointURL sends its requests to another endpoint (moto, LocalStack, a VPC endpoint);
	// default: the service's own. (aws.endpoint_url is for DynamoDB only.)
	EndpointURL string `yaml:"endpoint_url"`
}

// Check checks the overrides after a config's own keys (errs) and joins all the errors, each a
// *ConfigError.
func (o AWSOverrides) Check(errs []error) error {
	if o.EndpointURL != "" && !IsHTTPURL(o.EndpointURL) {
		errs = append(errs, &plugin.ConfigError{Key: "endpoint_url", Msg: fmt.Sprintf("must be an absolute http or https URL, got %q", RedactURL(o.EndpointURL))})
	}
	return plugin.JoinConfigErrors(errs)
}

// Apply returns the SDK config with the overrides in place. The SDK config is copied: the caller's
// stays as it was.
func (o AWSOverrides) Apply(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	if o.Region != "" {
		cfg.Region = o.Region
	}
	if o.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(o.EndpointURL)
	}
	return cfg
}

// ApplyARN is Apply for a client of the resource named by arn (arn:partition:service:region:...):
// when neither the overrides nor the poller's config give a region, the resource's own is used. An
// empty arn (a resource given by name) adds nothing to Apply.
func (o AWSOverrides) ApplyARN(cfg aws.Config, arn string) aws.Config {
	cfg = o.Apply(cfg)
	if p := strings.Split(arn, ":"); cfg.Region == "" && len(p) > 3 {
		cfg.Region = p[3]
	}
	return cfg
}

// RequiredKey checks a config's required key: set, and valid by ok; must says what a valid value
// is, e.g. "must be an SNS topic ARN such as ...".
func RequiredKey(key, value string, ok func(string) bool, must string) []error {
	switch {
	case value == "":
		return []error{&plugin.ConfigError{Key: key, Msg: "required"}}
	case !ok(value):
		return []error{&plugin.ConfigError{Key: key, Msg: fmt.Sprintf("%s, got %q", must, value)}}
	}
	return nil
}

// IsHTTPURL reports an absolute http or https URL.
func IsHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
