package sinks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/event"
)

// withKeptJSON returns b carrying each record's JSON, as the dispatcher hands it over.
func withKeptJSON(t *testing.T, b Batch) Batch {
	t.Helper()
	b.RecordJSON = nil
	for i := range b.Records {
		j, err := event.AppendJSON(nil, &b.Records[i])
		require.NoError(t, err)
		b.RecordJSON = append(b.RecordJSON, j)
	}
	return b
}

// With or without kept JSON, EventJSON and Lines give the bytes encoding/json gives.
func TestBatchEncodingsAreWhatJSONMarshalGives(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		plain := testBatch("1", n)
		want, err := json.Marshal(events.DynamoDBEvent{Records: append([]events.DynamoDBEventRecord{}, plain.Records...)})
		require.NoError(t, err)
		var wantLines strings.Builder
		for _, r := range plain.Records {
			line, err := json.Marshal(r)
			require.NoError(t, err)
			wantLines.Write(append(line, '\n'))
		}
		partly := withKeptJSON(t, plain)
		for i := 0; i < n; i += 2 {
			partly.RecordJSON[i] = nil // not kept: a large record
		}
		for name, b := range map[string]Batch{"encoded": plain, "kept": withKeptJSON(t, plain), "partly kept": partly} {
			got, err := b.EventJSON()
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "%s, %d records: EventJSON", name, n)
			lines, err := b.Lines()
			require.NoError(t, err)
			assert.Equal(t, wantLines.String(), string(lines), "%s, %d records: Lines", name, n)
		}
	}
}

// A batch whose kept JSON does not match its records one for one (a batch whose Records were
// replaced by hand) is encoded afresh.
func TestBatchEncodesWhenTheKeptJSONDoesNotFit(t *testing.T) {
	b := withKeptJSON(t, testBatch("1", 3))
	b.Records = b.Records[:2]
	got, err := b.EventJSON()
	require.NoError(t, err)
	want, err := event.AppendEvent(nil, b.Records)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
}

func TestBatchSliceKeepsRecordsAndJSONTogether(t *testing.T) {
	b := withKeptJSON(t, testBatch("1", 5))
	s := b.Slice(1, 3)
	assert.Equal(t, b.Records[1:3], s.Records)
	assert.Equal(t, b.RecordJSON[1:3], s.RecordJSON)
	assert.Equal(t, b.ShardID, s.ShardID)
	third := b.Records[3].EventID
	s.Records = append(s.Records, b.Records[0])
	s.RecordJSON = append(s.RecordJSON, b.RecordJSON[0])
	assert.Equal(t, third, b.Records[3].EventID, "appending to a slice never overwrites the batch")
	assert.NotEqual(t, string(b.RecordJSON[0]), string(b.RecordJSON[3]), "nor its kept JSON")
	assert.Nil(t, testBatch("1", 5).Slice(1, 3).RecordJSON, "no kept JSON, none in a slice")
}

// The built-in sinks write the kept bytes as they are: a record is never encoded again. (The kept
// JSON here is deliberately not the records' encoding, to tell the two apart.)
func TestSinksWriteTheKeptJSON(t *testing.T) {
	b := testBatch("1", 2)
	b.RecordJSON = [][]byte{[]byte(`{"kept":0}`), []byte(`{"kept":1}`)}

	var out strings.Builder
	require.NoError(t, NewStdout(Deps{Stdout: &out}).Deliver(context.Background(), b))
	assert.Equal(t, "{\"kept\":0}\n{\"kept\":1}\n", out.String(), "stdout")

	path := filepath.Join(t.TempDir(), "out.jsonl")
	f, err := NewFile(FileConfig{Path: path}, Deps{})
	require.NoError(t, err)
	require.NoError(t, f.Deliver(context.Background(), b))
	require.NoError(t, f.Close(context.Background()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "{\"kept\":0}\n{\"kept\":1}\n", string(data), "file")

	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	require.NoError(t, newHTTPSink(t, HTTPConfig{URL: srv.URL}, false).Deliver(context.Background(), b))
	assert.Equal(t, `{"Records":[{"kept":0},{"kept":1}]}`, string(body), "http")
}
