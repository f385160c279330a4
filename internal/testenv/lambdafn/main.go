// Command lambdafn is a Lambda function for the lambda sink's tests, built with aws-lambda-go's
// lambda.Start and run under the Runtime Interface Emulator (testenv.LambdaFunction). It is a test
// tool: no part of the poller imports it, so aws-lambda-go's runtime stays out of the poller binary.
//
// Its environment says what it does with a DynamoDB Streams event:
//   - FN_LOG (required): a file it appends one JSON line to per invocation, before answering:
//     {"keys": [...], "seqs": [...], "result": "ok"|"error"|"timeout"|"partial"}. The emulator runs
//     one invocation at a time, so lines never interleave.
//   - FN_POISON: an item key; an event holding it fails as FN_MODE says: "error" (the handler
//     returns an error) or "sleep" (it sleeps past the function's timeout).
//   - FN_MODE "partial": the first event holding FN_PARTIAL_FIRST (an item key) is answered with a
//     partial batch response naming the records of the keys in FN_PARTIAL_FAILED (comma separated).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type line struct {
	Keys   []string `json:"keys"`
	Seqs   []string `json:"seqs"`
	Result string   `json:"result"`
}

func main() {
	lambda.Start(handle)
}

func handle(ctx context.Context, ev events.DynamoDBEvent) (*events.DynamoDBEventResponse, error) {
	l := line{Keys: []string{}, Seqs: []string{}}
	for _, r := range ev.Records {
		l.Keys = append(l.Keys, keyOf(r))
		l.Seqs = append(l.Seqs, r.Change.SequenceNumber)
	}
	poison := os.Getenv("FN_POISON")
	switch mode := os.Getenv("FN_MODE"); {
	case poison != "" && slices.Contains(l.Keys, poison) && mode == "error":
		l.Result = "error"
		return nil, errors.Join(record(l), fmt.Errorf("poison record %s", poison))
	case poison != "" && slices.Contains(l.Keys, poison) && mode == "sleep":
		l.Result = "timeout"
		if err := record(l); err != nil {
			return nil, err
		}
		time.Sleep(time.Hour) // killed by the emulator at the function's timeout
		return nil, errors.New("not killed at the function's timeout")
	case mode == "partial" && partialDue(l.Keys):
		l.Result = "partial"
		resp := &events.DynamoDBEventResponse{}
		for _, k := range strings.Split(os.Getenv("FN_PARTIAL_FAILED"), ",") {
			if i := slices.Index(l.Keys, k); i >= 0 {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: l.Seqs[i]})
			}
		}
		return resp, record(l)
	}
	l.Result = "ok"
	return &events.DynamoDBEventResponse{}, record(l)
}

// partialDue reports whether this event is the first one holding FN_PARTIAL_FIRST: the handler
// process may be restarted, so a marker file next to the log says it was answered.
func partialDue(keys []string) bool {
	if !slices.Contains(keys, os.Getenv("FN_PARTIAL_FIRST")) {
		return false
	}
	marker := os.Getenv("FN_LOG") + ".partial"
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	return f.Close() == nil
}

func record(l line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv("FN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func keyOf(r events.DynamoDBEventRecord) string {
	for _, v := range r.Change.Keys {
		return v.String()
	}
	return ""
}
