package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

// lostAnswers passes every request on to moto, but answers the first n PUTs with a 500 after moto
// stored them: a put whose answer was lost, so the sink retries what S3 already holds.
type lostAnswers struct {
	moto string
	mu   sync.Mutex
	n    int
}

func (p *lostAnswers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a, ok := passOn(w, r, p.moto, body)
	if !ok {
		return
	}
	p.mu.Lock()
	lose := r.Method == http.MethodPut && p.n > 0
	if lose {
		p.n--
	}
	p.mu.Unlock()
	if lose {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>")
		return
	}
	a.write(w)
}

// The s3 sink's key is the batch's own: a batch stored but whose answers were lost (more than the
// SDK's own retries, so the failure policy sends the batch again) overwrites its object, and each
// record is stored exactly once.
func TestFanoutS3RetriedBatchOverwritesItself(t *testing.T) {
	moto := testenv.Moto(t)
	endpoint := testenv.DynamoDBLocal(t)
	proxy := &lostAnswers{moto: moto, n: 4} // the SDK tries a put 3 times
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	name := unique("s3-retry")
	sinkKeys, read := setupS3(t, moto, name)
	sinkKeys = strings.Replace(sinkKeys, "endpoint_url: "+moto, "endpoint_url: "+srv.URL, 1)
	db := dynamo(endpoint)
	createTable(t, db, name)
	writeFanoutItems(t, db, name, false)
	p := startPoller(t, fanoutConfig(t, endpoint, name, sinkKeys, t.TempDir()+"/on_failure.jsonl"))
	want := fanoutKeys * fanoutVersions
	waitFor(t, "every record in S3", 90*time.Second, func() bool { return len(read(t)) >= want })
	waitFor(t, "the lost answers used up", 30*time.Second, func() bool { proxy.mu.Lock(); defer proxy.mu.Unlock(); return proxy.n == 0 })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	checkFanoutOnce(t, read(t), want)
}
