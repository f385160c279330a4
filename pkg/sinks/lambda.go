package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func init() {
	Register("lambda", DefaultLambdaConfig, func(c *LambdaConfig, d Deps) (Sink, error) { return NewLambda(*c, d) })
}

// LambdaConfig is the lambda sink's config: the function each batch is invoked on, synchronously
// (RequestResponse), with the event Lambda's own trigger would send.
type LambdaConfig struct {
	// FunctionName is the function's name, ARN or partial ARN; required.
	FunctionName string `yaml:"function_name"`
	// Qualifier is a version or alias to invoke; default none ($LATEST, or the ARN's own).
	Qualifier string `yaml:"qualifier"`
	// RoleARN, when set, is assumed through STS before invoking (a function in another account);
	// the poller's own credentials must be allowed sts:AssumeRole on it. Default none.
	RoleARN string `yaml:"role_arn"`
	// AWSOverrides are the function's region (default the poller's aws.region: a function in
	// another region than the table) and endpoint_url (a local aws-lambda-rie, a VPC endpoint).
	AWSOverrides `yaml:",inline"`
	// Timeout bounds one Invoke call; default 20s (see DefaultHTTPTimeout). Set it above the
	// function's own timeout, or a slow call is abandoned while the function still runs.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultLambdaConfig returns the defaults: timeout 20s.
func DefaultLambdaConfig() *LambdaConfig {
	return &LambdaConfig{Timeout: DefaultHTTPTimeout}
}

// CallTimeout is the timeout, which `poller validate` compares with shutdown_timeout.
func (c *LambdaConfig) CallTimeout() time.Duration { return c.Timeout }

// Validate checks every key; errors are *ConfigError.
func (c *LambdaConfig) Validate() error {
	var errs []error
	if c.FunctionName == "" {
		errs = append(errs, &ConfigError{Key: "function_name", Msg: "required"})
	} else if strings.ContainsAny(c.FunctionName, " /\t\r\n") {
		errs = append(errs, &ConfigError{Key: "function_name", Msg: fmt.Sprintf("must be a function name, ARN or partial ARN, got %q", c.FunctionName)})
	}
	if c.Qualifier != "" && strings.ContainsAny(c.Qualifier, " /:\t\r\n") {
		errs = append(errs, &ConfigError{Key: "qualifier", Msg: fmt.Sprintf("must be a version or alias name, got %q", c.Qualifier)})
	}
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:") {
		errs = append(errs, &ConfigError{Key: "role_arn", Msg: fmt.Sprintf("must be an IAM role ARN such as arn:aws:iam::123456789012:role/poller, got %q", c.RoleARN)})
	}
	if c.Timeout <= 0 {
		errs = append(errs, &ConfigError{Key: "timeout", Msg: fmt.Sprintf("must be positive, got %s", c.Timeout)})
	}
	return c.Check(errs)
}

// invoker is the part of the Lambda client the sink uses.
type invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Lambda invokes a function with each batch, as Lambda's trigger does: synchronously, with the
// event {"Records": [...]}, the function's answer read as the partial batch response when
// Deps.ReportBatchItemFailures is on. It is safe for concurrent use.
type Lambda struct {
	// All fields are immutable after NewLambda.
	client    invoker
	function  string
	qualifier *string
	timeout   time.Duration
	rbif      bool
}

var (
	_ Sink    = (*Lambda)(nil)
	_ Limiter = (*Lambda)(nil)
)

// NewLambda builds a lambda sink from the poller's AWS config (Deps.AWS). It calls no AWS API: a
// role_arn is assumed at the first Invoke, and its credentials are cached and renewed before they
// expire.
func NewLambda(cfg LambdaConfig, deps Deps) (*Lambda, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	awsCfg := deps.AWS.Copy()
	if cfg.Region != "" {
		awsCfg.Region = cfg.Region
	}
	if cfg.RoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg)
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "poller" }))
	}
	client := lambda.NewFromConfig(awsCfg, func(o *lambda.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
		// Every failed call goes back to the delivery policy, which retries it with its own
		// backoff (throttles without using up max_retry_attempts), bounded by max_record_age, and
		// counts it in the metrics: SDK retries inside one call would hide them.
		o.Retryer = aws.NopRetryer{}
	})
	l := &Lambda{client: client, function: cfg.FunctionName, timeout: cfg.Timeout, rbif: deps.ReportBatchItemFailures}
	if cfg.Qualifier != "" {
		l.qualifier = aws.String(cfg.Qualifier)
	}
	return l, nil
}

// MaxEventBytes is Lambda's 6 MB synchronous invocation payload limit.
func (l *Lambda) MaxEventBytes() int { return LambdaMaxEventBytes }

// Deliver invokes the function with the batch. It returns nil when the function returned without
// error; a *FunctionError when it failed (an error it returned, a crash, a timeout); an
// *InvokeError when Lambda refused or failed the call, which is a throttle (see InvokeError) for
// TooManyRequestsException and 5xx service errors; an error naming the timeout when no answer came
// in time; and, with ReportBatchItemFailures, a *BatchError for a partial batch response, or an
// error saying why the answer made the whole batch fail. With a tumbling window (b.Window) the
// answer must hold the window's state, which replaces b.Window.State.
func (l *Lambda) Deliver(ctx context.Context, b Batch) error {
	body, err := b.EventJSON()
	if err != nil {
		return err
	}
	if len(body) > LambdaMaxEventBytes {
		return fmt.Errorf("invoke %s: event of %d records is %d bytes, over the %d byte limit", l.function, len(b.Records), len(body), LambdaMaxEventBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	out, err := l.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		Qualifier:      l.qualifier,
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        body,
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("invoke %s: no answer within %s: %w", l.function, l.timeout, err)
		}
		return newInvokeError(l.function, err)
	}
	if ferr := functionError(l.function, out); ferr != nil {
		return ferr
	}
	if !l.rbif && b.Window == nil {
		return nil // Lambda ignores the answer unless ReportBatchItemFailures is on.
	}
	return readAnswer("invoke "+l.function, out.Payload, b, l.rbif)
}

// Close does nothing: the client keeps no resources that need releasing.
func (l *Lambda) Close(context.Context) error { return nil }

// InvokeError is an Invoke call that Lambda answered with an error of its own, before or instead of
// running the function: a throttle, a service error, a missing function, a denied permission, a
// payload it refused (RequestTooLargeException), ...
//
// A throttle (TooManyRequestsException, or any 5xx service error) never reached the function, so
// the delivery policy retries it without using up max_retry_attempts, as Lambda's trigger does: it
// is marked, through Unwrap, with ErrThrottled. Every other InvokeError is a failed call.
type InvokeError struct {
	// Function is the sink's function_name.
	Function string
	// StatusCode is the HTTP status of Lambda's answer; 0 when there was none (a refused
	// connection, for instance, which the delivery policy also retries as not invoked).
	StatusCode int
	// Throttled is true for TooManyRequestsException and 5xx service errors.
	Throttled bool
	// Err is the SDK's error.
	Err error
}

func newInvokeError(function string, err error) *InvokeError {
	e := &InvokeError{Function: function, Err: err}
	if re, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		e.StatusCode = re.HTTPStatusCode()
	}
	_, tooMany := errors.AsType[*types.TooManyRequestsException](err)
	e.Throttled = tooMany || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
	return e
}

// Error names the function and, for a throttle, says it is retried as one.
func (e *InvokeError) Error() string {
	if e.Throttled {
		return fmt.Sprintf("invoke %s: throttled or a service error, retried without using up max_retry_attempts: %v", e.Function, e.Err)
	}
	return fmt.Sprintf("invoke %s: %v", e.Function, e.Err)
}

// Unwrap returns the SDK's error and, for a throttle, ErrThrottled.
func (e *InvokeError) Unwrap() []error {
	if !e.Throttled {
		return []error{e.Err}
	}
	return []error{e.Err, ErrThrottled}
}

// HTTPStatus is the status of Lambda's answer, for the on-failure record's
// responseContext.statusCode.
func (e *InvokeError) HTTPStatus() int { return e.StatusCode }
