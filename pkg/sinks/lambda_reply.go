package sinks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// FunctionError is an invocation in which the function failed: it returned an error, crashed or
// timed out. The delivery policy counts it against max_retry_attempts and bisects on it, as Lambda's
// trigger does with a function error.
type FunctionError struct {
	// Function is the sink's function_name.
	Function string
	// Kind is the X-Amz-Function-Error header ("Unhandled", "Handled"), or "Unhandled" for an error
	// object or a timeout reported without it (the runtime interface emulator).
	Kind string
	// Type and Message are the error object's errorType and errorMessage, when the answer is one.
	Type, Message string
	// Body is the start of the answer when it is not an error object.
	Body string
}

// HTTPStatus is 200: Lambda's Invoke answers a function error with 200, and so does its trigger's
// on-failure record (responseContext.statusCode).
func (e *FunctionError) HTTPStatus() int { return http.StatusOK }

// Error names the function and what the function reported.
func (e *FunctionError) Error() string {
	if e.Type != "" || e.Message != "" {
		return fmt.Sprintf("invoke %s: function error (%s) %s: %s", e.Function, e.Kind, e.Type, e.Message)
	}
	return fmt.Sprintf("invoke %s: function error (%s): %q", e.Function, e.Kind, e.Body)
}

// errorObject is Lambda's error object, the answer of a function that failed.
type errorObject struct {
	ErrorMessage *string `json:"errorMessage"`
	ErrorType    *string `json:"errorType"`
}

// rieTimeout is how the runtime interface emulator answers an invocation that ran past
// AWS_LAMBDA_FUNCTION_TIMEOUT: status 200, no X-Amz-Function-Error, and this text followed by
// "N.00 seconds" as the whole body, not JSON. Lambda itself answers a timeout with the header and
// an error object.
var rieTimeout = []byte("Task timed out after ")

// functionError returns the *FunctionError an Invoke answer reports, or nil when the function
// succeeded. A failure is the X-Amz-Function-Error header (out.FunctionError); or, without it, an
// answer that is a Lambda error object {"errorMessage": ..., "errorType": ...}, or the emulator's
// timeout text (rieTimeout), which is how the runtime interface emulator reports them.
func functionError(function string, out *lambda.InvokeOutput) *FunctionError {
	payload := bytes.TrimSpace(out.Payload)
	var obj errorObject
	isObject := len(payload) > 0 && payload[0] == '{' && json.Unmarshal(payload, &obj) == nil &&
		obj.ErrorMessage != nil && obj.ErrorType != nil
	e := &FunctionError{Function: function, Kind: "Unhandled"}
	switch {
	case out.FunctionError != nil:
		e.Kind = *out.FunctionError
	case isObject:
	case bytes.HasPrefix(payload, rieTimeout) && !json.Valid(payload):
		e.Type = "Sandbox.Timedout"
		e.Message = snippet(payload)
		return e
	default:
		return nil
	}
	if isObject {
		e.Type, e.Message = snippet([]byte(*obj.ErrorType)), snippet([]byte(*obj.ErrorMessage))
	} else {
		e.Body = snippet(payload)
	}
	return e
}
