package onfailure

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/poller-dev/poller/pkg/sinks"
)

// maxMessageBytes is the SQS and SNS message size limit (256 KB), which is why, as with Lambda, their
// reports carry no payload.
const maxMessageBytes = 256 * 1024

// AWSOverrides are the keys every AWS-backed destination has besides its own (region,
// endpoint_url), shared with the AWS-backed sinks.
type AWSOverrides = sinks.AWSOverrides

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
