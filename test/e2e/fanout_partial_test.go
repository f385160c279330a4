package e2e

import (
	"encoding/base64"
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

// batchAPI is how a batch call of a JSON-protocol service names its entries and answers for them.
type batchAPI struct {
	target string // X-Amz-Target, e.g. AmazonSQS.SendMessageBatch
	list   string // the request's list of entries
	// record returns the record JSON an entry carries.
	record func(e map[string]any) []byte
	// fail marks the entries at indices from.. (ids: theirs) as failed with code in the answer.
	fail func(answer map[string]any, from int, ids []string, code string)
}

// byIndex marks failed entries in an answer that lists one result per entry, in order (Kinesis,
// Firehose, EventBridge), and counts them in its count field.
func byIndex(results, count string) func(map[string]any, int, []string, string) {
	return func(answer map[string]any, from int, ids []string, code string) {
		list, _ := answer[results].([]any)
		for range ids {
			list = append(list, map[string]any{"ErrorCode": code, "ErrorMessage": "injected by the test"})
		}
		answer[results] = list
		n, _ := answer[count].(float64)
		answer[count] = n + float64(len(ids))
	}
}

var (
	sqsBatch = batchAPI{target: "AmazonSQS.SendMessageBatch", list: "Entries",
		record: func(e map[string]any) []byte { s, _ := e["MessageBody"].(string); return []byte(s) },
		fail: func(answer map[string]any, _ int, ids []string, code string) {
			failed, _ := answer["Failed"].([]any)
			for _, id := range ids {
				failed = append(failed, map[string]any{"Id": id, "Code": code, "Message": "injected by the test", "SenderFault": false})
			}
			answer["Failed"] = failed
		}}
	kinesisBatch = batchAPI{target: "Kinesis_20131202.PutRecords", list: "Records", record: base64Data,
		fail: byIndex("Records", "FailedRecordCount")}
	firehoseBatch = batchAPI{target: "Firehose_20150804.PutRecordBatch", list: "Records", record: base64Data,
		fail: byIndex("RequestResponses", "FailedPutCount")}
	eventBridgeBatch = batchAPI{target: "AWSEvents.PutEvents", list: "Entries",
		record: func(e map[string]any) []byte { s, _ := e["Detail"].(string); return []byte(s) },
		fail:   byIndex("Entries", "FailedEntryCount")}
)

func base64Data(e map[string]any) []byte {
	s, _ := e["Data"].(string)
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// faultProxy stands in front of moto: it passes every request on, except that the first call of
// api with more than failFrom entries reaches moto with only its first failFrom entries, and its
// answer lists the others as failed with code, as the service answers a partly failed call. It
// logs the eventIDs of every call of api, in order.
type faultProxy struct {
	moto     string
	api      batchAPI
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
	if r.Header.Get("X-Amz-Target") == p.api.target {
		body, dropped = p.batch(body)
	}
	a, ok := passOn(w, r, p.moto, body)
	if !ok {
		return
	}
	if len(dropped) > 0 {
		var m map[string]any
		if json.Unmarshal(a.body, &m) == nil {
			p.api.fail(m, p.failFrom, dropped, p.code)
			a.body, _ = json.Marshal(m)
		}
	}
	a.write(w)
}

// answer is what an upstream answered a proxied request.
type answer struct {
	status      int
	contentType string
	body        []byte
}

// write passes the answer on to w.
func (a answer) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", a.contentType)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// passOn sends r, with body, to upstream (with r's headers) and returns its answer, for a test proxy
// to look at or change before it writes it. ok false: the request failed, and w was answered 502.
func passOn(w http.ResponseWriter, r *http.Request, upstream string, body []byte) (a answer, ok bool) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return answer{}, false
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return answer{}, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return answer{}, false
	}
	return answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}, true
}

// batch logs a call's records and, for the one call it fails, keeps only the first failFrom
// entries; it returns the body to pass on and the ids (or indices) of the entries it took out.
func (p *faultProxy) batch(body []byte) ([]byte, []string) {
	var in map[string]any
	if json.Unmarshal(body, &in) != nil {
		return body, nil
	}
	entries, _ := in[p.api.list].([]any)
	var ids []string
	for _, e := range entries {
		m, _ := e.(map[string]any)
		var rec struct{ EventID string }
		_ = json.Unmarshal(p.api.record(m), &rec)
		ids = append(ids, rec.EventID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, ids)
	if p.injected || len(entries) <= p.failFrom {
		return body, nil
	}
	p.injected = true
	var dropped []string
	for i, e := range entries[p.failFrom:] {
		id, _ := e.(map[string]any)["Id"].(string) // SQS's entry id; the others answer by position
		dropped = append(dropped, cmpOr(id, fmt.Sprint(p.failFrom+i)))
	}
	in[p.api.list] = entries[:p.failFrom]
	out, _ := json.Marshal(in)
	return out, dropped
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *faultProxy) log() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// A batch call that the service answers with entries 3.. failed is retried from entry 3 on: the
// next call starts with that record, the three records before it are never sent again, and each
// record is delivered exactly once. A failed entry uses the retry budget; a throttled one
// (SQS RequestThrottled, Kinesis ProvisionedThroughputExceededException, Firehose
// ServiceUnavailableException) is retried even with max_retry_attempts 0, counted as a throttle.
func TestFanoutPartlyFailedCallIsRetriedFromItsFirstFailedRecord(t *testing.T) {
	tests := []struct {
		name, code, extra string
		api               batchAPI
		setup             func(t *testing.T, moto, name string) (string, func(t *testing.T) []fanoutRecord)
		wantThrottles     bool
	}{
		{name: "sqs failed entry", code: "InternalError", api: sqsBatch, setup: setupSQS(false)},
		{name: "sqs throttled entry", code: "RequestThrottled", api: sqsBatch, setup: setupSQS(false),
			extra: "    max_retry_attempts: 0\n", wantThrottles: true},
		{name: "kinesis throttled entry", code: "ProvisionedThroughputExceededException", api: kinesisBatch, setup: setupKinesis,
			extra: "    max_retry_attempts: 0\n", wantThrottles: true},
		{name: "firehose throttled entry", code: "ServiceUnavailableException", api: firehoseBatch, setup: setupFirehose,
			extra: "    max_retry_attempts: 0\n", wantThrottles: true},
		{name: "eventbridge failed entry", code: "InternalFailure", api: eventBridgeBatch, setup: setupEventBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moto := testenv.Moto(t)
			proxy := &faultProxy{moto: moto, api: tt.api, failFrom: 3, code: tt.code}
			srv := httptest.NewServer(proxy)
			t.Cleanup(srv.Close)
			name := unique(strings.ReplaceAll(tt.name, " ", "-"))
			sinkKeys, read := tt.setup(t, moto, name)
			sinkKeys = strings.Replace(sinkKeys, "endpoint_url: "+moto, "endpoint_url: "+srv.URL, 1)
			throttles := partlyFailedCall(t, name, sinkKeys, tt.extra, read)
			if (throttles > 0) != tt.wantThrottles {
				t.Errorf("poller_sink_throttles_total = %v, want > 0: %v", throttles, tt.wantThrottles)
			}
			checkRetriedFrom(t, proxy, fanoutKeys*fanoutVersions)
		})
	}
}

// partlyFailedCall runs the poller on a new table into the sink and checks that every record
// arrived once and none went to on_failure; it returns poller_sink_throttles_total.
func partlyFailedCall(t *testing.T, name, sinkKeys, extra string, read func(t *testing.T) []fanoutRecord) float64 {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	createTable(t, db, name)
	writeFanoutItems(t, db, name, false)
	reports, port := t.TempDir()+"/on_failure.jsonl", freePort(t)
	p := startPoller(t, fanoutConfigOn(port, endpoint, name, sinkKeys, reports, extra))
	want := fanoutKeys * fanoutVersions
	waitFor(t, fmt.Sprintf("%d records delivered", want), 90*time.Second, func() bool { return len(read(t)) >= want })
	throttles := metricValue(t, port, name, "poller_sink_throttles_total", "")
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	checkFanoutOnce(t, read(t), want)
	if reps := readReports(t, reports); len(reps) != 0 {
		t.Errorf("on_failure got %d reports, want none", len(reps))
	}
	return throttles
}

// checkRetriedFrom fails unless the call after the failed one starts at its first failed record,
// and only the failed records were sent twice.
func checkRetriedFrom(t *testing.T, proxy *faultProxy, want int) {
	t.Helper()
	calls := proxy.log()
	if len(calls) < 2 || len(calls[0]) <= proxy.failFrom {
		t.Fatalf("calls = %v, want a first one of more than %d entries and a retry", calls, proxy.failFrom)
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
