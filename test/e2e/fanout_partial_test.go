package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

// faultProxy stands in front of moto: it passes every request on, except that the first
// SendMessageBatch of at least failFrom+1 entries reaches moto with only its first failFrom
// entries, and its answer lists the others as failed with code, as SQS answers a partly failed
// call. It logs the eventIDs of every SendMessageBatch, in order.
type faultProxy struct {
	moto     string
	failFrom int
	code     string
	mu       sync.Mutex
	injected bool
	calls    [][]string
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var dropped []string
	if r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessageBatch" {
		body, dropped = p.batch(body)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.moto+r.URL.RequestURI(), strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if len(dropped) > 0 {
		answer = failEntries(answer, dropped, p.code)
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// batch logs a SendMessageBatch's records and, for the one call it fails, keeps only the first
// failFrom entries; it returns the body to pass on and the ids of the entries it took out.
func (p *faultProxy) batch(body []byte) ([]byte, []string) {
	var in map[string]json.RawMessage
	var entries []struct{ Id, MessageBody string }
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["Entries"], &entries) != nil {
		return body, nil
	}
	var ids []string
	for _, e := range entries {
		var rec struct{ EventID string }
		_ = json.Unmarshal([]byte(e.MessageBody), &rec)
		ids = append(ids, rec.EventID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, ids)
	if p.injected || len(entries) <= p.failFrom {
		return body, nil
	}
	p.injected = true
	var raw []json.RawMessage
	_ = json.Unmarshal(in["Entries"], &raw)
	in["Entries"], _ = json.Marshal(raw[:p.failFrom])
	var dropped []string
	for _, e := range entries[p.failFrom:] {
		dropped = append(dropped, e.Id)
	}
	out, _ := json.Marshal(in)
	return out, dropped
}

// failEntries adds the dropped entries to a SendMessageBatch answer as failed.
func failEntries(answer []byte, dropped []string, code string) []byte {
	var out map[string]any
	if json.Unmarshal(answer, &out) != nil {
		return answer
	}
	failed, _ := out["Failed"].([]any)
	for _, id := range dropped {
		failed = append(failed, map[string]any{"Id": id, "Code": code, "Message": "injected by the test", "SenderFault": false})
	}
	out["Failed"] = failed
	b, _ := json.Marshal(out)
	return b
}

func (p *faultProxy) log() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// A SendMessageBatch that SQS answers with entries 3.. failed is retried from entry 3 on: the next
// call starts with that record, the three records before it are never sent again, and each record
// ends up in the queue exactly once. With max_retry_attempts 0, a failed entry ends in on_failure,
// but a throttled one (RequestThrottled) is retried without using up the budget, and counted as a
// throttle.
func TestFanoutPartlyFailedCallIsRetriedFromItsFirstFailedRecord(t *testing.T) {
	tests := []struct {
		name, code, extra string
		wantThrottles     bool
	}{
		{name: "a failed entry", code: "InternalError"},
		{name: "a throttled entry keeps max_retry_attempts 0", code: "RequestThrottled", extra: "    max_retry_attempts: 0\n", wantThrottles: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { partlyFailedCall(t, tt.code, tt.extra, tt.wantThrottles) })
	}
}

func partlyFailedCall(t *testing.T, code, extra string, wantThrottles bool) {
	moto := testenv.Moto(t)
	endpoint := testenv.DynamoDBLocal(t)
	proxy := &faultProxy{moto: moto, failFrom: 3, code: code}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)

	name := unique("sqs-partial")
	c := sqsClient(moto)
	url, _ := createQueue(t, c, name)
	read := queueReader(c, url)
	db := dynamo(endpoint)
	createTable(t, db, name)
	writeFanoutItems(t, db, name, false)
	sinkKeys := fmt.Sprintf("      type: sqs\n      queue_url: %s\n      endpoint_url: %s\n", url, srv.URL)
	reports, port := t.TempDir()+"/on_failure.jsonl", freePort(t)
	p := startPoller(t, fanoutConfigOn(port, endpoint, name, sinkKeys, reports, extra))

	want := fanoutKeys * fanoutVersions
	received := func() []fanoutRecord { // every record the queue received so far
		var got []fanoutRecord
		for _, b := range read(t) {
			got = append(got, parseRecord(t, b))
		}
		return got
	}
	waitFor(t, fmt.Sprintf("%d records in the queue", want), 90*time.Second, func() bool { return len(received()) >= want })
	throttles := metricValue(t, port, name, "poller_sink_throttles_total", "")
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	checkOnce(t, received(), want)
	if reps := readReports(t, reports); len(reps) != 0 {
		t.Errorf("on_failure got %d reports, want none", len(reps))
	}
	if (throttles > 0) != wantThrottles {
		t.Errorf("poller_sink_throttles_total = %v, want > 0: %v", throttles, wantThrottles)
	}
	checkRetriedFrom(t, proxy, want)
}

// checkRetriedFrom fails unless the call after the failed one starts at its first failed record,
// and only the failed records were sent twice.
func checkRetriedFrom(t *testing.T, proxy *faultProxy, want int) {
	t.Helper()
	calls := proxy.log()
	if len(calls) < 2 || len(calls[0]) <= proxy.failFrom {
		t.Fatalf("SendMessageBatch calls = %v, want a first one of more than %d entries and a retry", calls, proxy.failFrom)
	}
	first, retry := calls[0], calls[1]
	if retry[0] != first[proxy.failFrom] {
		t.Errorf("the retry starts with %s, want %s, the first failed record", retry[0], first[proxy.failFrom])
	}
	sends := map[string]int{}
	for _, call := range calls {
		for _, id := range call {
			sends[id]++
		}
	}
	for i, id := range first {
		wantSends := 1
		if i >= proxy.failFrom {
			wantSends = 2 // failed once, then sent again
		}
		if sends[id] != wantSends {
			t.Errorf("record %d of the first call (%s) was sent %d times, want %d", i, id, sends[id], wantSends)
		}
	}
	if len(sends) != want {
		t.Errorf("%d distinct records were sent, want %d", len(sends), want)
	}
}
