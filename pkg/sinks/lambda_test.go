package sinks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/config"
)

// lambdaAPI stands in for Lambda's Invoke API for the answers the Runtime Interface Emulator
// cannot give (throttles, service errors, refused payloads, the X-Amz-Function-Error header); the
// emulator's own answers are tested end to end in test/e2e. It keeps the last request.
type lambdaAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	header map[string]string
	body   string
	delay  time.Duration
	last   *http.Request
	lastIn []byte
}

func newLambdaAPI(t *testing.T) *lambdaAPI {
	a := &lambdaAPI{status: 200}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.last, a.lastIn = r, in
		status, header, body, delay := a.status, a.header, a.body, a.delay
		a.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay): // a slow function, inside the request
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *lambdaAPI) answer(status int, header map[string]string, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.header, a.body = status, header, body
}

func testLambda(t *testing.T, endpoint string, rbif bool, mod func(*LambdaConfig)) *Lambda {
	t.Helper()
	cfg := DefaultLambdaConfig()
	cfg.FunctionName, cfg.EndpointURL, cfg.Qualifier = "my-fn", endpoint, "live"
	if mod != nil {
		mod(cfg)
	}
	l, err := NewLambda(*cfg, Deps{Logger: zap.NewNop(), AWS: testenv.AWSConfig(), ReportBatchItemFailures: rbif})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lambdaError(body string) map[string]string {
	return map[string]string{"Content-Type": "application/json", "X-Amzn-ErrorType": body}
}

func TestLambdaDeliverMapsEachAnswer(t *testing.T) {
	b := testBatch("s", 3)
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		rbif   bool
		// check judges Deliver's error.
		check func(t *testing.T, err error)
	}{
		{name: "a plain answer is success", status: 200, body: `null`, check: wantNil},
		{name: "an answer that is not JSON is success without report_batch_item_failures", status: 200, body: `OK`, check: wantNil},
		{name: "X-Amz-Function-Error is a function error", status: 200, header: map[string]string{"X-Amz-Function-Error": "Unhandled"},
			body: `{"errorMessage":"boom","errorType":"errorString"}`, check: wantFunctionError("Unhandled", "errorString")},
		{name: "a Lambda error object without the header (the emulator) is a function error", status: 200,
			body: `{"errorMessage":"boom","errorType":"errorString"}`, check: wantFunctionError("Unhandled", "errorString")},
		{name: "the emulator's timeout text is a function error", status: 200, body: `Task timed out after 1.00 seconds`,
			check: wantFunctionError("Unhandled", "Sandbox.Timedout")},
		{name: "an answer with only an errorMessage key is not an error object", status: 200, body: `{"errorMessage":"x"}`, check: wantNil},
		{name: "TooManyRequestsException is a throttle", status: 429, header: lambdaError("TooManyRequestsException"),
			body: `{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`, check: wantThrottle(429)},
		{name: "a 5xx service error is a throttle", status: 500, header: lambdaError("ServiceException"), body: `{"message":"internal"}`, check: wantThrottle(500)},
		{name: "a 502 from an ENI limit is a throttle", status: 502, header: lambdaError("ENILimitReachedException"), body: `{"message":"eni"}`, check: wantThrottle(502)},
		{name: "RequestTooLargeException is a failed call, not a throttle", status: 413, header: lambdaError("RequestTooLargeException"),
			body: `{"message":"too large"}`, check: wantFailedCall(413)},
		{name: "a missing function is a failed call", status: 404, header: lambdaError("ResourceNotFoundException"), body: `{"message":"no"}`, check: wantFailedCall(404)},
		{name: "a partial batch response names the failed records", status: 200, rbif: true,
			body: `{"batchItemFailures":[{"itemIdentifier":"s-1"}]}`, check: func(t *testing.T, err error) {
				if be, ok := errors.AsType[*BatchError](err); !ok || len(be.Failed) != 1 || be.Failed[0] != "s-1" {
					t.Errorf("Deliver() = %v, want a *BatchError for s-1", err)
				}
			}},
		{name: "a partial batch response is ignored without report_batch_item_failures", status: 200,
			body: `{"batchItemFailures":[{"itemIdentifier":"s-1"}]}`, check: wantNil},
		{name: "an answer that is not a partial batch response fails the batch", status: 200, rbif: true, body: `[1]`,
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "the whole batch failed") {
					t.Errorf("Deliver() = %v, want the whole batch failed", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newLambdaAPI(t)
			api.answer(tt.status, tt.header, tt.body)
			err := testLambda(t, api.srv.URL, tt.rbif, nil).Deliver(context.Background(), b)
			tt.check(t, err)
		})
	}
}

func wantNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("Deliver() = %v, want nil", err)
	}
}

func wantFunctionError(kind, typ string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		fe, ok := errors.AsType[*FunctionError](err)
		if !ok || fe.Kind != kind || fe.Type != typ {
			t.Errorf("Deliver() = %v, want a *FunctionError (%s, %s)", err, kind, typ)
		}
		if IsThrottled(err) {
			t.Errorf("Deliver() = %v: a function error must not look like a throttle", err)
		}
	}
}

// wantThrottle checks the mark the delivery policy retries without using up max_retry_attempts:
// ErrThrottled.
func wantThrottle(status int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		ie, ok := errors.AsType[*InvokeError](err)
		if !ok || !ie.Throttled || ie.StatusCode != status {
			t.Fatalf("Deliver() = %v, want a throttled *InvokeError of status %d", err, status)
		}
		if !errors.Is(err, ErrThrottled) {
			t.Errorf("Deliver() = %v, want it marked with ErrThrottled", err)
		}
	}
}

func wantFailedCall(status int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		ie, ok := errors.AsType[*InvokeError](err)
		if !ok || ie.Throttled || ie.StatusCode != status {
			t.Fatalf("Deliver() = %v, want an *InvokeError of status %d, not a throttle", err, status)
		}
		if IsThrottled(err) {
			t.Errorf("Deliver() = %v: a failed call must not carry the throttle mark", err)
		}
	}
}

func TestLambdaInvokesSynchronouslyWithTheEvent(t *testing.T) {
	api := newLambdaAPI(t)
	b := testBatch("s", 2)
	if err := testLambda(t, api.srv.URL, false, nil).Deliver(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want, _ := b.EventJSON()
	api.mu.Lock()
	defer api.mu.Unlock()
	r := api.last
	if r.URL.Path != "/2015-03-31/functions/my-fn/invocations" || r.URL.Query().Get("Qualifier") != "live" {
		t.Errorf("request %s, want /2015-03-31/functions/my-fn/invocations?Qualifier=live", r.URL)
	}
	if got := r.Header.Get("X-Amz-Invocation-Type"); got != "RequestResponse" {
		t.Errorf("X-Amz-Invocation-Type = %q, want RequestResponse", got)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "/us-east-1/lambda/aws4_request") {
		t.Errorf("Authorization = %q, want a SigV4 signature for lambda in us-east-1", r.Header.Get("Authorization"))
	}
	if string(api.lastIn) != string(want) {
		t.Errorf("payload = %s, want the event %s", api.lastIn, want)
	}
}

func TestLambdaTimeoutIsAFailedCall(t *testing.T) {
	api := newLambdaAPI(t)
	api.delay = time.Minute
	l := testLambda(t, api.srv.URL, false, func(c *LambdaConfig) { c.Timeout = 200 * time.Millisecond })
	err := l.Deliver(context.Background(), testBatch("s", 1))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("Deliver() = %v, want no answer within 200ms", err)
	}
	if IsThrottled(err) {
		t.Errorf("Deliver() = %v: a timeout must not look like a throttle (the function may have run)", err)
	}
}

func TestLambdaEventOverTheLimitIsNeverSent(t *testing.T) {
	api := newLambdaAPI(t)
	b := testBatch("s", 1)
	b.Records[0].Change.NewImage["Big"] = events.NewStringAttribute(strings.Repeat("x", LambdaMaxEventBytes))
	err := testLambda(t, api.srv.URL, false, nil).Deliver(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "over the 6291456 byte limit") {
		t.Fatalf("Deliver() = %v, want over the byte limit", err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.last != nil {
		t.Errorf("the oversized event was sent")
	}
}

// role_arn is assumed through STS (moto's): the Invoke call is signed with the role's credentials,
// not the poller's own.
func TestLambdaAssumesRoleARN(t *testing.T) {
	moto := testenv.Moto(t)
	api := newLambdaAPI(t)
	cfg := DefaultLambdaConfig()
	cfg.FunctionName, cfg.EndpointURL, cfg.Region = "my-fn", api.srv.URL, "eu-west-1"
	cfg.RoleARN = "arn:aws:iam::123456789012:role/poller-invoker"
	awsCfg := testenv.AWSConfig()
	awsCfg.BaseEndpoint = aws.String(moto) // where STS is; the function's endpoint is endpoint_url
	l, err := NewLambda(*cfg, Deps{Logger: zap.NewNop(), AWS: awsCfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Deliver(context.Background(), testBatch("s", 1)); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	auth := api.last.Header.Get("Authorization")
	if strings.Contains(auth, "Credential=test/") || api.last.Header.Get("X-Amz-Security-Token") == "" {
		t.Errorf("Authorization = %q with no session token: signed with the poller's own credentials, not the role's", auth)
	}
	if !strings.Contains(auth, "/eu-west-1/lambda/aws4_request") {
		t.Errorf("Authorization = %q, want a signature for the function's region eu-west-1", auth)
	}
}

func TestLambdaConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*LambdaConfig)
		wantErr string
	}{
		{name: "function_name is required", mod: func(c *LambdaConfig) { c.FunctionName = "" }, wantErr: "function_name: required"},
		{name: "a function name with a slash is refused", mod: func(c *LambdaConfig) { c.FunctionName = "a/b" }, wantErr: "function_name: must be"},
		{name: "a qualifier with a colon is refused", mod: func(c *LambdaConfig) { c.Qualifier = "a:b" }, wantErr: "qualifier: must be"},
		{name: "role_arn must be an ARN", mod: func(c *LambdaConfig) { c.RoleARN = "poller" }, wantErr: "role_arn: must be an IAM role ARN"},
		{name: "endpoint_url must be an http URL", mod: func(c *LambdaConfig) { c.EndpointURL = "localhost:8080" }, wantErr: "endpoint_url: must be an absolute http or https URL"},
		{name: "timeout must be positive", mod: func(c *LambdaConfig) { c.Timeout = 0 }, wantErr: "timeout: must be positive"},
		{name: "an ARN with a qualifier is valid", mod: func(c *LambdaConfig) { c.FunctionName = "arn:aws:lambda:eu-west-1:123456789012:function:my-fn:live" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultLambdaConfig()
			c.FunctionName = "my-fn"
			tt.mod(c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The config loader checks the lambda sink's keys at their lines, as every sink's.
func TestLambdaConfigErrorsNameFileAndLine(t *testing.T) {
	const yaml = `pipelines:
  - name: p
    source:
      table: GameScores
    sink:
      type: lambda
      role_arn: poller
      timeout: -1s
      functionname: x
`
	_, err := config.Parse([]byte(yaml), "poller.yaml", config.Registries{Sinks: Registry.ConfigTypes()})
	for _, want := range []string{
		"poller.yaml:9: pipelines[0].sink.functionname:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse() = %v, want %q", err, want)
		}
	}
	fixed := strings.Replace(yaml, "      functionname: x\n", "", 1)
	_, err = config.Parse([]byte(fixed), "poller.yaml", config.Registries{Sinks: Registry.ConfigTypes()})
	for _, want := range []string{
		"poller.yaml:5: pipelines[0].sink.function_name: required",
		`poller.yaml:7: pipelines[0].sink.role_arn: must be an IAM role ARN such as arn:aws:iam::123456789012:role/poller, got "poller"`,
		"poller.yaml:8: pipelines[0].sink.timeout: must be positive, got -1s",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse() = %v, want %q", err, want)
		}
	}
}
