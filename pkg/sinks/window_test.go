package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The handler gets aws-lambda-go's DynamoDBTimeWindowEvent: the records and the window's members.
func TestHTTPSendsTheTimeWindowEvent(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, `{"state":{"sum":"7"}}`)
	}))
	defer srv.Close()
	s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, false)
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	b := testBatch("1", 2)
	b.StreamARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026"
	b.Window = &Window{Start: start, End: start.Add(time.Minute), State: map[string]string{"sum": "3"}}

	require.NoError(t, s.Deliver(context.Background(), b))

	var ev events.DynamoDBTimeWindowEvent
	require.NoError(t, json.Unmarshal(body, &ev))
	assert.Equal(t, b.Records, ev.Records)
	assert.Equal(t, start, ev.Window.Start.UTC())
	assert.Equal(t, start.Add(time.Minute), ev.Window.End.UTC())
	assert.Equal(t, map[string]string{"sum": "3"}, ev.State)
	assert.Equal(t, b.ShardID, ev.ShardID)
	assert.Equal(t, b.StreamARN, ev.EventSourceARN)
	assert.False(t, ev.IsFinalInvokeForWindow)
	assert.Contains(t, string(body), `"isWindowTerminatedEarly":false`)
	assert.Equal(t, map[string]string{"sum": "7"}, b.Window.State, "the answered state is the window's now")
}

func TestHTTPTimeWindowAnswers(t *testing.T) {
	tests := []struct {
		name      string
		rbif      bool
		body      string
		wantErr   bool
		wantState map[string]string
		wantFail  []string
	}{
		{name: "state", body: `{"state":{"n":"1"}}`, wantState: map[string]string{"n": "1"}},
		{name: "empty state", body: `{"state":{}}`, wantState: map[string]string{}},
		{name: "no state fails the call, as in Lambda", body: `{}`, wantErr: true, wantState: map[string]string{"n": "0"}},
		{name: "empty answer fails the call", body: ``, wantErr: true, wantState: map[string]string{"n": "0"}},
		{name: "state not of strings", body: `{"state":{"n":1}}`, wantErr: true, wantState: map[string]string{"n": "0"}},
		{name: "partial response keeps the state", rbif: true, body: `{"state":{"n":"1"},"batchItemFailures":[{"itemIdentifier":"1-2"}]}`,
			wantState: map[string]string{"n": "1"}, wantFail: []string{"1-2"}},
		{name: "bad partial response keeps the old state", rbif: true, body: `{"state":{"n":"1"},"batchItemFailures":[{"itemIdentifier":"99"}]}`,
			wantErr: true, wantState: map[string]string{"n": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := answer(t, http.StatusOK, tt.body)
			s := newHTTPSink(t, HTTPConfig{URL: srv.URL}, tt.rbif)
			b := testBatch("1", 3)
			b.Window = &Window{State: map[string]string{"n": "0"}}
			err := s.Deliver(context.Background(), b)
			var be *BatchError
			switch {
			case tt.wantFail != nil:
				require.True(t, errors.As(err, &be), "err = %v", err)
				assert.Equal(t, tt.wantFail, be.Failed)
			case tt.wantErr:
				require.Error(t, err)
			default:
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantState, b.Window.State)
		})
	}
}

// The lambda sink invokes the function with the time window event and takes the state it returns.
func TestLambdaCarriesTheWindowState(t *testing.T) {
	api := newLambdaAPI(t)
	l := testLambda(t, api.srv.URL, false, nil)
	b := testBatch("s", 1)
	b.Window = &Window{State: map[string]string{"sum": "1"}, Final: true}

	api.answer(200, nil, `{"state":{"sum":"2"}}`)
	require.NoError(t, l.Deliver(context.Background(), b))
	assert.Equal(t, map[string]string{"sum": "2"}, b.Window.State)
	var ev events.DynamoDBTimeWindowEvent
	api.mu.Lock()
	require.NoError(t, json.Unmarshal(api.lastIn, &ev))
	api.mu.Unlock()
	assert.Equal(t, map[string]string{"sum": "1"}, ev.State)
	assert.True(t, ev.IsFinalInvokeForWindow)

	api.answer(200, nil, `null`)
	require.Error(t, l.Deliver(context.Background(), b), "an answer without state fails the call")
	assert.Equal(t, map[string]string{"sum": "2"}, b.Window.State)
}
