// Package onfailure reports discarded batches (retries exhausted, or records older than
// max_record_age) to an on_failure destination, in the shape of the invocation record AWS Lambda
// sends to an event source mapping's on-failure destination for a DynamoDB stream:
//
//	{
//	  "requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
//	  "responseContext": {"statusCode", "executedVersion", "functionError"},
//	  "version": "1.0",
//	  "timestamp": "2019-11-14T00:13:49.717Z",
//	  "DDBStreamBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
//	    "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord", "batchSize", "streamArn"},
//	  "payload": "{\"Records\":[...]}"
//	}
//
// As with Lambda, the sqs and sns destinations carry the metadata only (their messages are limited
// to 256 KB; the records are re-read from the stream by sequence number while it retains them), and
// the s3 destination also carries the whole event as a JSON string under payload. The file
// destination carries the payload too.
//
// In a pipeline's data flow, a destination comes after the sink (pkg/sinks): when the failure policy
// gives up on a batch (max_retry_attempts used up, or records older than max_record_age), it sends a
// Failure to the pipeline's Destination and checkpoints past the batch only once the report is
// stored. Destination types are registered by name like sink types (Register), and a pipeline's
// `on_failure.type` key picks one.
package onfailure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/poller-dev/poller/pkg/event"
	"github.com/poller-dev/poller/pkg/sinks"
)

// Condition says why a batch was discarded.
type Condition string

const (
	// RetryAttemptsExhausted: the batch failed max_retry_attempts + 1 times (Lambda's value).
	RetryAttemptsExhausted Condition = "RetryAttemptsExhausted"
	// RecordAgeExceeded: a record was older than max_record_age. Lambda's docs show no value for
	// this case; emulators differ (RecordAgeExpired, MaximumRecordAgeExceeded), so this name follows
	// the pattern of the documented one.
	RecordAgeExceeded Condition = "RecordAgeExceeded"
	// RecordTooLarge: the record is over the size limit of the sink's service (an SQS message of
	// more than 256 KB, say), so no retry could deliver it; it is reported alone, at once. Lambda
	// has no such case (its only limit is the 6 MB event); the name follows the documented one's
	// pattern.
	RecordTooLarge Condition = "RecordTooLarge"
)

// Failure is one discarded batch.
type Failure struct {
	// Batch holds the discarded records, in sequence-number order; it must not be empty.
	Batch sinks.Batch
	// Condition says why it was discarded.
	Condition Condition
	// InvokeCount is how many times the batch was delivered to the sink (approximateInvokeCount);
	// 0 for records discarded for their age before any delivery.
	InvokeCount int
	// LastErr is the last delivery's error; nil when there was no failed delivery.
	LastErr error
	// StatusCode is the status of the sink's last answer (the http sink's HTTP status), 0 when there
	// was none (no delivery, refused connection, timeout).
	StatusCode int
	// Time is when the batch was discarded; the zero value means now.
	Time time.Time
	// RequestID identifies the report; empty means a random UUID.
	RequestID string
	// FunctionARN stands for Lambda's function ARN; empty means FunctionARN(StreamARN, Pipeline).
	FunctionARN string
}

// Destination receives reports of discarded batches. Send must be safe for concurrent use; an
// error means the report was not stored: the poller counts it and retries, its shard waiting, so
// that no discarded record is lost (Lambda, there, drops the report and goes on).
type Destination interface {
	// Send stores the report of one discarded batch.
	Send(ctx context.Context, f Failure) error
	// Close releases the destination. It is called once, after the pipelines stopped; ctx bounds
	// how long it may take.
	Close(ctx context.Context) error
}

// encode returns the JSON of f's record (see NewRecord).
func encode(f Failure, withPayload bool) ([]byte, error) {
	rec, err := NewRecord(f, withPayload)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode report for %s: %w", f.Batch.ShardID, err)
	}
	return b, nil
}

// Record is Lambda's on-failure invocation record for a DynamoDB stream, field for field.
type Record struct {
	// RequestContext says which "invocation" failed and why.
	RequestContext RequestContext `json:"requestContext"`
	// ResponseContext is the sink's last answer.
	ResponseContext ResponseContext `json:"responseContext"`
	// Version is the record format's, "1.0".
	Version string `json:"version"`
	// Timestamp is when the batch was discarded, RFC 3339 in UTC with milliseconds.
	Timestamp string `json:"timestamp"`
	// DDBStreamBatchInfo locates the discarded records in the stream.
	DDBStreamBatchInfo BatchInfo `json:"DDBStreamBatchInfo"`
	// Payload is the whole event, {"Records": [...]}, as a JSON string (s3 and file only).
	Payload string `json:"payload,omitempty"`
}

// RequestContext describes the failed "invocation".
type RequestContext struct {
	RequestID   string    `json:"requestId"`   // Failure.RequestID
	FunctionARN string    `json:"functionArn"` // Failure.FunctionARN
	Condition   Condition `json:"condition"`   // why the batch was discarded
	// ApproximateInvokeCount is how many times the batch was delivered (Failure.InvokeCount).
	ApproximateInvokeCount int `json:"approximateInvokeCount"`
}

// ResponseContext describes the sink's last answer.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`      // Failure.StatusCode
	ExecutedVersion string `json:"executedVersion"` // "$LATEST", as for an unqualified function
	// FunctionError is "Unhandled" when the last delivery failed, absent when there was none.
	FunctionError string `json:"functionError,omitempty"`
	// ErrorMessage is the last delivery's error (an addition to Lambda's record: a Lambda
	// function's error stays in its logs, a sink's would otherwise be lost).
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// BatchInfo locates the discarded records in the stream.
type BatchInfo struct {
	ShardID string `json:"shardId"`
	// StartSequenceNumber and EndSequenceNumber are the first and last records' sequence numbers.
	StartSequenceNumber string `json:"startSequenceNumber"`
	EndSequenceNumber   string `json:"endSequenceNumber"`
	// ApproximateArrivalOfFirstRecord and ...LastRecord are the records' creation times, RFC 3339.
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"` // how many records
	StreamARN                       string `json:"streamArn"`
}

const (
	// recordVersion is the invocation record format version Lambda sends.
	recordVersion = "1.0"
	// executedVersion is what Lambda reports for an unqualified function.
	executedVersion = "$LATEST"
	// maxErrorMessage bounds errorMessage, so metadata stays far below the 256 KB message limit.
	maxErrorMessage = 1024
)

// NewRecord builds the record for f, with the payload when withPayload is set.
func NewRecord(f Failure, withPayload bool) (Record, error) {
	recs := f.Batch.Records
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("report discarded batch of %s: no records", f.Batch.ShardID)
	}
	if f.Condition == "" {
		return Record{}, errors.New("report discarded batch: no condition")
	}
	at := f.Time
	if at.IsZero() {
		at = time.Now()
	}
	id := f.RequestID
	if id == "" {
		id = newUUID()
	}
	arn := f.FunctionARN
	if arn == "" {
		arn = FunctionARN(f.Batch.StreamARN, f.Batch.Pipeline)
	}
	first, last := recs[0], recs[len(recs)-1]
	r := Record{
		RequestContext: RequestContext{
			RequestID:              id,
			FunctionARN:            arn,
			Condition:              f.Condition,
			ApproximateInvokeCount: f.InvokeCount,
		},
		ResponseContext: ResponseContext{
			StatusCode:      f.StatusCode,
			ExecutedVersion: executedVersion,
		},
		Version:   recordVersion,
		Timestamp: at.UTC().Format("2006-01-02T15:04:05.000Z"),
		DDBStreamBatchInfo: BatchInfo{
			ShardID:                         f.Batch.ShardID,
			StartSequenceNumber:             first.Change.SequenceNumber,
			EndSequenceNumber:               last.Change.SequenceNumber,
			ApproximateArrivalOfFirstRecord: first.Change.ApproximateCreationDateTime.UTC().Format("2006-01-02T15:04:05Z"),
			ApproximateArrivalOfLastRecord:  last.Change.ApproximateCreationDateTime.UTC().Format("2006-01-02T15:04:05Z"),
			BatchSize:                       len(recs),
			StreamARN:                       f.Batch.StreamARN,
		},
	}
	if f.LastErr != nil {
		r.ResponseContext.FunctionError = "Unhandled"
		msg := f.LastErr.Error()
		if len(msg) > maxErrorMessage {
			msg = msg[:maxErrorMessage] + "..."
		}
		r.ResponseContext.ErrorMessage = msg
	}
	if withPayload {
		p, err := event.AppendEvent(nil, f.Batch.Records)
		if err != nil {
			return Record{}, fmt.Errorf("encode payload of discarded batch of %s: %w", f.Batch.ShardID, err)
		}
		r.Payload = string(p)
	}
	return r, nil
}

// FunctionARN is the poller's stand-in for Lambda's function ARN: the partition, region and account
// of the stream, service "poller", resource "pipeline:<name>", e.g.
// arn:aws:poller:us-east-1:123456789012:pipeline:congrats. It identifies the pipeline the way the
// function ARN identifies the consumer in Lambda's record.
func FunctionARN(streamARN, pipeline string) string {
	partition, region, account := "aws", "", ""
	if p := strings.SplitN(streamARN, ":", 6); len(p) == 6 && p[0] == "arn" {
		partition, region, account = p[1], p[3], p[4]
	}
	return fmt.Sprintf("arn:%s:poller:%s:%s:pipeline:%s", partition, region, account, pipeline)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
