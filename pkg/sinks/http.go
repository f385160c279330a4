package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/poller-dev/poller/pkg/plugin"
)

func init() {
	Register("http", DefaultHTTPConfig, func(c *HTTPConfig, d Deps) (Sink, error) { return NewHTTP(*c, d) })
}

// LambdaMaxEventBytes is Lambda's synchronous invocation payload limit (6 MB), which the http sink
// keeps so that an endpoint written for Lambda never sees a larger event.
const LambdaMaxEventBytes = 6 * 1024 * 1024

// maxAnswerBytes bounds how much of an answer is read: Lambda's response payload limit is 6 MB too.
// Without report_batch_item_failures only the start of the body matters (for error messages), but
// reading a little more lets a short answer's connection be reused.
const (
	maxAnswerBytes       = LambdaMaxEventBytes
	maxIgnoredAnswer     = 64 << 10
	errorBodySnippetSize = 512
)

// HTTPConfig is the http sink's config.
type HTTPConfig struct {
	// URL receives each batch as a POST; required, an absolute http or https URL.
	URL string `yaml:"url"`
	// Timeout bounds one delivery, from connecting to reading the answer; default 20s, below the
	// default shutdown_timeout (25s), so a call in flight at SIGTERM ends within the drain.
	Timeout time.Duration `yaml:"timeout"`
	// Headers are sent with every request, e.g. Authorization; default none. Host sets the
	// request's Host; Content-Type and Content-Length belong to the sink.
	Headers map[string]string `yaml:"headers"`
	// TLS sets a CA, a client certificate and a server name for an https url; default none (the
	// system's CAs, no client certificate). See HTTPTLSConfig.
	TLS *HTTPTLSConfig `yaml:"tls"`
	// SigV4 signs each request with AWS Signature Version 4; default none. See HTTPSigV4Config.
	SigV4 *HTTPSigV4Config `yaml:"sigv4"`
	// HMAC signs each request with a shared secret; default none. See HTTPHMACConfig.
	HMAC *HTTPHMACConfig `yaml:"hmac"`
}

// DefaultHTTPTimeout is the http sink's default timeout: below the default shutdown_timeout (25 s)
// with room for the checkpoint and lease release that follow the last call of a drain.
const DefaultHTTPTimeout = 20 * time.Second

// DefaultHTTPConfig returns the defaults: timeout 20s, no headers.
func DefaultHTTPConfig() *HTTPConfig {
	return &HTTPConfig{Timeout: DefaultHTTPTimeout}
}

// CallTimeout is the timeout, which `poller validate` compares with shutdown_timeout.
func (c *HTTPConfig) CallTimeout() time.Duration { return c.Timeout }

// Validate checks every key; errors are *ConfigError.
func (c *HTTPConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, &ConfigError{Key: "url", Msg: "required"})
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &ConfigError{Key: "url", Msg: fmt.Sprintf("must be an absolute http or https URL, got %q", RedactURL(c.URL))})
	}
	if c.Timeout <= 0 {
		errs = append(errs, &ConfigError{Key: "timeout", Msg: fmt.Sprintf("must be positive, got %s", c.Timeout)})
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		key := "headers." + name
		switch {
		case !validHeaderName(name):
			errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf("%q is not a valid header name", name)})
		case strings.EqualFold(name, "Content-Type"), strings.EqualFold(name, "Content-Length"), strings.EqualFold(name, "Transfer-Encoding"):
			errs = append(errs, &ConfigError{Key: key, Msg: "is set by the sink (the body is the Lambda event, application/json)"})
		case strings.ContainsAny(c.Headers[name], "\r\n\x00"):
			errs = append(errs, &ConfigError{Key: key, Msg: "must not contain CR, LF or NUL"})
		}
	}
	errs = append(errs, c.validateSecurity()...)
	return plugin.JoinConfigErrors(errs)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			continue
		}
		return false
	}
	return true
}

// HTTPError is a delivery the endpoint answered with a status other than 2xx. A 3xx is one too:
// redirects are never followed (see Deliver).
type HTTPError struct {
	// URL is the sink's URL, redacted (RedactURL).
	URL string
	// StatusCode is the answer's HTTP status.
	StatusCode int
	// Body is the start of the answer's body (at most 512 bytes).
	Body string
	// Location is a 3xx answer's Location header, redacted; empty otherwise.
	Location string
}

// Error names the request, the status and the start of the body.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("POST %s: status %d %s, body %q", e.URL, e.StatusCode, http.StatusText(e.StatusCode), e.Body)
	if e.StatusCode >= 300 && e.StatusCode <= 399 {
		msg += fmt.Sprintf("; redirects are not followed (to %q): set the sink's url to the final address", e.Location)
	}
	return msg
}

// HTTP POSTs each batch as Lambda's event JSON, {"Records": [...]}, and takes a 2xx answer as
// success. It is safe for concurrent use; all deliveries share one client, whose connections are
// reused. With Deps.ReportBatchItemFailures it reads a 2xx answer as Lambda's partial batch response.
type HTTP struct {
	// All fields are immutable after NewHTTP.
	url       string
	redacted  string
	timeout   time.Duration
	header    http.Header
	host      string
	rbif      bool
	client    *http.Client
	transport *http.Transport
	signer    *requestSigner // nil without hmac and sigv4
}

var (
	_ Sink    = (*HTTP)(nil)
	_ Limiter = (*HTTP)(nil)
)

// NewHTTP builds an http sink. It does not contact the endpoint.
func NewHTTP(cfg HTTPConfig, deps Deps) (*HTTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	h := &HTTP{
		url:      cfg.URL,
		redacted: RedactURL(u.String()),
		timeout:  cfg.Timeout,
		header:   make(http.Header, len(cfg.Headers)+1),
		rbif:     deps.ReportBatchItemFailures,
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "Host") {
			h.host = v
			continue
		}
		h.header.Set(k, v)
	}
	h.header.Set("Content-Type", "application/json")

	// Every shard's batches go to one host, so keep many idle connections to it: the default of
	// 2 per host would make parallel deliveries reconnect all the time.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	if t.TLSClientConfig, err = tlsConfig(cfg.TLS); err != nil {
		return nil, err
	}
	if h.signer, err = newRequestSigner(cfg, deps.AWS); err != nil {
		return nil, err
	}
	h.transport = t
	// The timeout is applied per delivery through the request's context, so that it and the
	// caller's cancellation end a delivery the same way.
	//
	// Redirects are never followed: the client would turn a POST answered with 301, 302 or 303
	// into a GET without the body, whose 2xx would count the batch as delivered although no
	// handler saw it. The 3xx itself is returned, a failed call (see HTTPError).
	h.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return h, nil
}

// MaxEventBytes is Lambda's 6 MB payload limit.
func (h *HTTP) MaxEventBytes() int { return LambdaMaxEventBytes }

// Deliver POSTs the batch. It returns nil for a 2xx answer; an *HTTPError for another status, 3xx
// included (never followed); the transport's *url.Error (naming the redacted URL) for a refused
// connection, a timeout or a cancellation;
// and, with ReportBatchItemFailures, a *BatchError for a partial batch response, or an error saying
// why the answer made the whole batch fail. With a tumbling window (b.Window) the answer must hold
// the window's state, which replaces b.Window.State.
func (h *HTTP) Deliver(ctx context.Context, b Batch) error {
	body, err := b.EventJSON()
	if err != nil {
		return err
	}
	if len(body) > LambdaMaxEventBytes {
		return fmt.Errorf("POST %s: event of %d records is %d bytes, over the %d byte limit", h.redacted, len(b.Records), len(body), LambdaMaxEventBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request for %s: %w", h.redacted, redactURLError(err, h.redacted))
	}
	req.Header = h.header.Clone()
	if h.host != "" {
		req.Host = h.host
	}
	if h.signer != nil {
		if err := h.signer.sign(ctx, req, body); err != nil {
			return fmt.Errorf("POST %s: %w", h.redacted, err)
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		err = redactURLError(err, h.redacted)
		if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s: %w", h.timeout, err)
		}
		// err is a *url.Error (`Post "<url>": dial tcp ...: connection refused`) that prints the
		// redacted URL, never the query string.
		return err
	}
	defer resp.Body.Close()

	limit := int64(maxIgnoredAnswer)
	if h.rbif || b.Window != nil {
		limit = maxAnswerBytes
	}
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		herr := &HTTPError{URL: h.redacted, StatusCode: resp.StatusCode, Body: snippet(answer)}
		if loc := resp.Header.Get("Location"); loc != "" {
			herr.Location = RedactURL(loc)
		}
		return herr
	}
	if !h.rbif && b.Window == nil {
		return nil // Lambda ignores the answer unless ReportBatchItemFailures is on.
	}
	if readErr != nil {
		return fmt.Errorf("POST %s: read answer: %w", h.redacted, readErr)
	}
	if int64(len(answer)) > limit {
		return fmt.Errorf("POST %s: answer over %d bytes; the whole batch failed", h.redacted, limit)
	}
	return readAnswer("POST "+h.redacted, answer, b, h.rbif)
}

// Close closes idle connections. Deliveries still in flight finish.
func (h *HTTP) Close(context.Context) error {
	h.transport.CloseIdleConnections()
	return nil
}

// snippet returns the start of an answer for an error message.
func snippet(b []byte) string {
	if len(b) > errorBodySnippetSize {
		return string(b[:errorBodySnippetSize]) + "..."
	}
	return string(b)
}
