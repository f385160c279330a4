package streamstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
)

// Op names an API operation, as in the X-Amz-Target header after the dot.
type Op string

// The operations the server answers itself. Calls also counts proxied DynamoDB operations under
// their own names (Op("PutItem"), ...).
const (
	OpDescribeStream   Op = "DescribeStream"
	OpGetShardIterator Op = "GetShardIterator"
	OpGetRecords       Op = "GetRecords"
	OpListStreams      Op = "ListStreams"
	// OpDescribeTable is DynamoDB's DescribeTable, answered here for tables with a stream on this
	// server and forwarded upstream for the others.
	OpDescribeTable Op = "DescribeTable"
)

// Request is what a fault hook sees of one call.
type Request struct {
	Op Op
	// Call counts the calls of this operation, this one included (1 for the first).
	Call int
	// StreamARN and ShardID are the ones the call is about, when known: from the input for
	// DescribeStream and GetShardIterator, from the shard iterator for GetRecords (empty if it does not
	// decode).
	StreamARN string
	ShardID   string

	ctx context.Context
}

// Context is the request's context: done when the client goes away or the server closes. A hook that
// delays an answer waits on it.
func (r Request) Context() context.Context { return r.ctx }

// FaultFunc decides the fate of one call before the server answers it: nil answers normally, an
// *APIError (see Throttle, ExpiredIterator, ...) is sent as that error, EmptyPage makes GetRecords
// answer an empty page, and any other error becomes an InternalServerError carrying its text.
// Hooks run concurrently, one per request, outside the server's lock.
type FaultFunc func(Request) error

// APIError is an error answer in the service's wire format. Build one with the functions below.
type APIError struct {
	// Code is the short error type, e.g. "LimitExceededException"; the SDK exposes it as ErrorCode().
	Code    string
	Message string
	// Status is the HTTP status: 400, or 500 for InternalServerError.
	Status int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// wireType is the __type the real service sends for e.
func (e *APIError) wireType() string {
	switch e.Code {
	case "ValidationException":
		return "com.amazon.coral.validate#" + e.Code
	case "SerializationException", "UnknownOperationException":
		return "com.amazon.coral.service#" + e.Code
	}
	return "com.amazonaws.dynamodb.v20120810#" + e.Code
}

func apiError(status int, code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// Throttle is LimitExceededException, DynamoDB Streams' throttling error. The SDK's default retryer
// retries it, so a test that wants to see it sets RetryMaxAttempts to 1.
func Throttle() error {
	return apiError(http.StatusBadRequest, "LimitExceededException", "Too many operations for a given subscriber")
}

// ExpiredIterator is ExpiredIteratorException.
func ExpiredIterator() error {
	return apiError(http.StatusBadRequest, "ExpiredIteratorException", "Iterator expired (injected)")
}

// Trimmed is TrimmedDataAccessException.
func Trimmed() error {
	return apiError(http.StatusBadRequest, "TrimmedDataAccessException", "The operation attempted to read past the oldest stream record in a shard (injected)")
}

// InternalError is InternalServerError, with status 500. The SDK's default retryer retries it.
func InternalError() error {
	return apiError(http.StatusInternalServerError, "InternalServerError", "An internal server error occurred (injected)")
}

// ResourceNotFound is ResourceNotFoundException.
func ResourceNotFound() error {
	return apiError(http.StatusBadRequest, "ResourceNotFoundException", "Requested resource not found (injected)")
}

// Validation is a ValidationException with the given message.
func Validation(msg string) error {
	return apiError(http.StatusBadRequest, "ValidationException", "%s", msg)
}

var errEmptyPage = errors.New("streamstest: empty page")

// EmptyPage makes GetRecords answer no records and a NextShardIterator at the same position, as the
// real service may do while records are waiting. Other operations treat it as nil.
func EmptyPage() error { return errEmptyPage }

// Times returns a hook that answers err to the first n calls it sees, and nil afterwards.
func Times(n int, err error) FaultFunc {
	var seen atomic.Int64
	return func(Request) error {
		if seen.Add(1) <= int64(n) {
			return err
		}
		return nil
	}
}

// OnShard returns a hook that applies fn to calls about shardID only.
func OnShard(shardID string, fn FaultFunc) FaultFunc {
	return func(r Request) error {
		if r.ShardID != shardID {
			return nil
		}
		return fn(r)
	}
}
