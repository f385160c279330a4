package sinks

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/poller-dev/poller/pkg/plugin"
)

func init() {
	Register("s3", nil, func(c *S3Config, d Deps) (Sink, error) { return NewS3(*c, d) })
}

// S3Config is the s3 sink's config.
type S3Config struct {
	// Bucket receives one object per batch; required.
	Bucket string `yaml:"bucket"`
	// Prefix is the first part of every key, without a trailing "/"; default "" (none).
	Prefix string `yaml:"prefix"`
	// ForcePathStyle addresses the bucket as endpoint/bucket rather than bucket.endpoint, as
	// S3-compatible stores (moto, MinIO) on an endpoint_url need; default false.
	ForcePathStyle bool `yaml:"force_path_style"`
	AWSOverrides   `yaml:",inline"`
}

// s3BucketName is S3's rule for general purpose bucket names.
var s3BucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// CheckS3Location checks the bucket and prefix keys of an S3 sink or destination: a bucket name
// is required, a prefix at most 512 bytes. The errors are *ConfigError.
func CheckS3Location(bucket, prefix string) []error {
	errs := RequiredKey("bucket", bucket, s3BucketName.MatchString, "must be an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
	if len(prefix) > 512 {
		errs = append(errs, &plugin.ConfigError{Key: "prefix", Msg: fmt.Sprintf("must be at most 512 bytes, got %d", len(prefix))})
	}
	return errs
}

// NewS3Client is the S3 client of an S3 sink or destination: the poller's AWS config with its
// overrides, path-style addressing if asked (moto, MinIO).
func NewS3Client(awsCfg aws.Config, o AWSOverrides, forcePathStyle bool) *s3.Client {
	return s3.NewFromConfig(o.Apply(awsCfg), func(opts *s3.Options) { opts.UsePathStyle = forcePathStyle })
}

// Validate checks every key; errors are *ConfigError.
func (c *S3Config) Validate() error {
	return c.Check(CheckS3Location(c.Bucket, c.Prefix))
}

// s3API is the part of the S3 client the sink uses.
type s3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3 stores each batch as one object, the Lambda event ({"Records": [...]}), under a key made of
// the batch alone (see S3Key): a retried batch, or one delivered again after a restart, overwrites
// its own object, so each batch is stored once.
type S3 struct {
	bucket, prefix string // immutable
	client         s3API
}

var _ Sink = (*S3)(nil)

// NewS3 builds an s3 sink. It does not contact S3.
func NewS3(cfg S3Config, deps Deps) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &S3{bucket: cfg.Bucket, prefix: cfg.Prefix, client: NewS3Client(deps.AWS, cfg.AWSOverrides, cfg.ForcePathStyle)}, nil
}

// Deliver stores the batch's event as one object.
func (s *S3) Deliver(ctx context.Context, b Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	body, err := b.EventJSON()
	if err != nil {
		return err
	}
	key := S3Key(s.prefix, b)
	if _, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json")}); err != nil {
		return fmt.Errorf("put batch of %d records to s3://%s/%s: %w", len(b.Records), s.bucket, key, awsError(err))
	}
	return nil
}

// Close does nothing: the client holds no resources that need releasing.
func (s *S3) Close(context.Context) error { return nil }

// S3Key returns the key of batch b's object: PREFIX/PIPELINE/YYYY/MM/DD/HH/SHARD-FIRSTSEQ-LASTSEQ.json,
// the time being the first record's ApproximateCreationDateTime in UTC, the pipeline and shard
// path-escaped, and no PREFIX/ when prefix is empty. Everything in it comes from the records, so a
// batch sent again has the same key.
func S3Key(prefix string, b Batch) string {
	first, last := b.Records[0].Change, b.Records[len(b.Records)-1].Change
	t := first.ApproximateCreationDateTime.UTC()
	key := fmt.Sprintf("%s/%s/%s-%s-%s.json", url.PathEscape(b.Pipeline), t.Format("2006/01/02/15"),
		url.PathEscape(b.ShardID), first.SequenceNumber, last.SequenceNumber)
	if p := strings.TrimSuffix(prefix, "/"); p != "" {
		key = p + "/" + key
	}
	return key
}
