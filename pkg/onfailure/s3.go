package onfailure

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/poller-dev/poller/pkg/sinks"
)

func init() {
	Register("s3", nil, func(c *S3Config, d Deps) (Destination, error) { return NewS3(*c, d) })
}

// S3Config is the s3 destination's config.
type S3Config struct {
	// Bucket receives one object per report; required.
	Bucket string `yaml:"bucket"`
	// Prefix is put before Lambda's key layout as is (write "failed/" for a folder); default "".
	Prefix string `yaml:"prefix"`
	// ForcePathStyle addresses the bucket as endpoint/bucket rather than bucket.endpoint, as
	// S3-compatible stores (moto, MinIO) on an endpoint_url need; default false.
	ForcePathStyle bool `yaml:"force_path_style"`
	AWSOverrides   `yaml:",inline"`
}

// Validate checks every key; errors are *plugin.ConfigError.
func (c *S3Config) Validate() error {
	return c.Check(sinks.CheckS3Location(c.Bucket, c.Prefix))
}

// s3API is the part of the S3 client the destination uses.
type s3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3 stores each report, with its payload, as one object, under Lambda's key layout:
// <prefix>aws/lambda/<pipeline>/<shard ID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>, where
// Lambda has its event source mapping's UUID in the place of the pipeline.
type S3 struct {
	bucket, prefix string // immutable
	client         s3API
}

var _ Destination = (*S3)(nil)

// NewS3 builds an s3 destination. It does not contact S3.
func NewS3(cfg S3Config, deps Deps) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &S3{bucket: cfg.Bucket, prefix: cfg.Prefix, client: sinks.NewS3Client(deps.AWS, cfg.AWSOverrides, cfg.ForcePathStyle)}, nil
}

// Send stores the report.
func (d *S3) Send(ctx context.Context, f Failure) error {
	if f.Time.IsZero() {
		f.Time = time.Now() // the key and the record's timestamp must agree
	}
	body, err := encode(f, true)
	if err != nil {
		return err
	}
	key := ObjectKey(d.prefix, f.Batch.Pipeline, f.Batch.ShardID, f.Time)
	if _, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(d.bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("put report for %s to s3://%s/%s: %w", f.Batch.ShardID, d.bucket, key, err)
	}
	return nil
}

// Close does nothing: the client holds no resources that need releasing.
func (d *S3) Close(context.Context) error { return nil }

// ObjectKey returns the key of a report stored at t: Lambda's layout
// aws/lambda/<ESM UUID>/<shard ID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>, with the pipeline
// (path-escaped) in the place of the event source mapping's UUID, after prefix.
func ObjectKey(prefix, pipeline, shardID string, t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%saws/lambda/%s/%s/%s/%s-%s", prefix, url.PathEscape(pipeline), url.PathEscape(shardID),
		t.Format("2006/01/02"), t.Format("2006-01-02T15.04.05"), newUUID())
}
