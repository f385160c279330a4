package sinks

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each fan-out sink's config is checked key by key, with the key named in the error.
func TestFanoutConfigs(t *testing.T) {
	moto := AWSOverrides{EndpointURL: "http://127.0.0.1:5000"}
	tests := []struct {
		name    string
		typ     string
		cfg     any
		wantKey string // "" for a valid config
		wantMsg string
	}{
		{"an sqs sink needs a queue URL", "sqs", &SQSConfig{}, "queue_url", "required"},
		{"an sqs queue URL must be a URL", "sqs", &SQSConfig{QueueURL: "changes"}, "queue_url", "absolute https URL"},
		{"an sqs sink with a queue URL and moto is valid", "sqs", &SQSConfig{QueueURL: "http://127.0.0.1:5000/1/q.fifo", AWSOverrides: moto}, "", ""},
		{"an endpoint_url must be an http URL", "sqs", &SQSConfig{QueueURL: "https://sqs.x/1/q", AWSOverrides: AWSOverrides{EndpointURL: "127.0.0.1:5000"}}, "endpoint_url", "absolute http or https URL"},
		{"an sns topic must be an ARN", "sns", &SNSConfig{TopicARN: "changes"}, "topic_arn", "SNS topic ARN"},
		{"a kinesis sink needs a stream", "kinesis", &KinesisConfig{}, "stream_name", "required"},
		{"a kinesis sink takes a name or an ARN, not both", "kinesis", &KinesisConfig{StreamName: "s", StreamARN: "arn:aws:kinesis:us-east-1:1:stream/s"}, "stream_arn", "not both"},
		{"a kinesis stream ARN must be one", "kinesis", &KinesisConfig{StreamARN: "arn:aws:sqs:us-east-1:1:q"}, "stream_arn", "Kinesis stream ARN"},
		{"a kinesis sink by ARN is valid", "kinesis", &KinesisConfig{StreamARN: "arn:aws:kinesis:us-east-1:1:stream/s"}, "", ""},
		{"a firehose sink needs a delivery stream", "firehose", &FirehoseConfig{}, "delivery_stream", "required"},
		{"an eventbridge source must not be empty", "eventbridge", &EventBridgeConfig{EventBus: "default", DetailType: "x"}, "source", "must not be empty"},
		{"an s3 bucket must be a bucket name", "s3", &S3Config{Bucket: "Bad_Bucket"}, "bucket", "S3 bucket name"},
		{"an s3 sink with a bucket is valid", "s3", &S3Config{Bucket: "audit", Prefix: "changes"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Registry.New(tt.typ, tt.cfg, Deps{})
			if tt.wantKey == "" {
				require.NoError(t, err)
				require.NoError(t, s.Close(t.Context()))
				return
			}
			ce, ok := errors.AsType[*ConfigError](err)
			require.True(t, ok, "New() error = %v, want a *ConfigError", err)
			assert.Equal(t, tt.wantKey, ce.Key)
			assert.Contains(t, ce.Msg, tt.wantMsg)
		})
	}
}

// The eventbridge sink defaults to the default bus, source poller and detail-type "DynamoDB Stream Record".
func TestEventBridgeDefaults(t *testing.T) {
	c := Registry.ConfigTypes()["eventbridge"]().(*EventBridgeConfig)
	assert.Equal(t, EventBridgeConfig{EventBus: "default", Source: "poller", DetailType: "DynamoDB Stream Record"}, *c)
}
