package shards

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
)

// The Streams API's errors are classified here, once, by type or by the API error code the service
// sent; never by message text.

// isExpiredIterator reports an iterator older than 15 minutes.
func isExpiredIterator(err error) bool {
	var e *types.ExpiredIteratorException
	return errors.As(err, &e)
}

// isTrimmed reports a position older than the stream's trim horizon.
func isTrimmed(err error) bool {
	var e *types.TrimmedDataAccessException
	return errors.As(err, &e)
}

// isNotFound reports a stream or shard that no longer exists (e.g. a shard trimmed away whole).
func isNotFound(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

// isThrottled reports that the caller must slow down: LimitExceededException, or the generic
// throttling codes the Streams endpoint has been seen to send.
func isThrottled(err error) bool {
	var le *types.LimitExceededException
	if errors.As(err, &le) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "Throttling", "RequestLimitExceeded", "ProvisionedThroughputExceededException":
			return true
		}
	}
	return false
}
