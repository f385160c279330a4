package sinks

import (
	"errors"
	"net"
	"net/http"
)

// ErrThrottled marks a sink error as a throttle: the endpoint refused the call before its handler
// ran (Lambda's TooManyRequestsException, a queue's "slow down"). A sink wraps it into such errors,
// e.g. fmt.Errorf("invoke %s: %w: %w", fn, sinks.ErrThrottled, err); the poller then retries the batch
// with backoff without using up max_retry_attempts or bisecting, and counts the call in
// poller_sink_throttles_total.
var ErrThrottled = errors.New("throttled by the sink")

// IsThrottled reports whether a sink error proves the call was refused before the handler ran: an
// error marked with ErrThrottled, a TCP connection that could not be made, or an *HTTPError with
// status 429 Too Many Requests. A timeout is not among them: the handler may have run.
func IsThrottled(err error) bool {
	if errors.Is(err, ErrThrottled) {
		return true
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return true
	}
	if h, ok := errors.AsType[*HTTPError](err); ok && h.StatusCode == http.StatusTooManyRequests {
		return true
	}
	return false
}
