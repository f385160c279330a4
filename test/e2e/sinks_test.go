package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/internal/testenv"
)

// An endpoint that answers redirects for a while (an ingress sending http to https, a moved
// handler) must not lose a batch: a 3xx is a failed call, retried, never followed.
func TestRedirectingSinkLosesNoBatch(t *testing.T) {
	const n = 200
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table, leases := unique("Redirects"), unique("leases")
	createTable(t, db, table)
	writeItems(t, db, table, 0, n, 100)

	// The first POSTs are answered with each redirect status in turn, then the same URL accepts
	// them. A GET (what a followed 301/302/303 becomes) is answered 200 without looking, as an
	// ingress's target would: following it would count the batch as delivered.
	statuses := []int{301, 302, 303, 307, 308}
	var mu sync.Mutex
	redirected, gets := 0, 0
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Method != http.MethodPost {
			gets++
			mu.Unlock()
			return
		}
		if redirected < len(statuses) {
			status := statuses[redirected]
			redirected++
			mu.Unlock()
			_, _ = io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, "/events", status)
			return
		}
		mu.Unlock()
		s.serve(w, r)
	}))
	t.Cleanup(s.srv.Close)

	p := startPoller(t, pipelineConfig{Endpoint: endpoint, Table: table, LeaseTable: leases, SinkURL: s.srv.URL + "/events", BatchSize: 10}.yaml(t))
	waitFor(t, fmt.Sprintf("%d records at the sink", n), 2*time.Minute, func() bool { return s.count() >= n })
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}
	s.settle(t)

	mu.Lock()
	defer mu.Unlock()
	if redirected != len(statuses) || gets != 0 {
		t.Errorf("the endpoint answered %d redirects and got %d GETs; want %d redirects, never followed", redirected, gets, len(statuses))
	}
	counts := byKey(s.snapshot())
	for i := range n {
		if counts[itemKey(i)] != 1 {
			t.Errorf("%s arrived %d times in a POST with its records, want exactly once", itemKey(i), counts[itemKey(i)])
		}
	}
	checkOrder(t, s.snapshot())
}

// A token in the sink URL (query string, user information, or a header) never shows in poller's
// log or in the on_failure record of a batch that failed for good.
func TestSinkSecretsNeverShowInLogsOrOnFailure(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table, leases := unique("Secrets"), unique("leases")
	createTable(t, db, table)
	writeItems(t, db, table, 0, 3, 10)

	// The first call is answered 500, the second never (the sink's timeout ends it with a
	// *url.Error, which prints its URL).
	var calls sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if _, seen := calls.LoadOrStore("first", true); !seen {
			http.Error(w, "failing on command", 500)
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	t.Setenv("E2E_SINK_TOKEN", "SECRET-QUERY-TOKEN")
	sinkURL := strings.Replace(srv.URL, "http://", "http://user:SECRET-PASSWORD@", 1) + "/events?token=${E2E_SINK_TOKEN}&x=1"
	reports := filepath.Join(t.TempDir(), "failed.jsonl")
	cfg := pipelineConfig{Endpoint: endpoint, Table: table, LeaseTable: leases, SinkURL: sinkURL,
		Extra:     "    max_retry_attempts: 1\n    on_failure:\n      type: file\n      path: " + reports + "\n",
		SinkExtra: "      timeout: 300ms\n      headers:\n        X-Api-Key: SECRET-HEADER\n",
	}.yaml(t)

	p := startPoller(t, cfg)
	waitFor(t, "the failed batch in on_failure", 2*time.Minute, func() bool {
		data, _ := os.ReadFile(reports)
		return strings.Count(string(data), "\n") >= 1
	})
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("poller exited with %d after SIGTERM, want 0", code)
	}

	report, err := os.ReadFile(reports)
	if err != nil {
		t.Fatal(err)
	}
	log := p.log.String()
	for what, text := range map[string]string{"poller's log": log, "the on_failure file": string(report)} {
		if strings.Contains(text, "SECRET") {
			i := strings.Index(text, "SECRET")
			t.Errorf("%s shows a secret: ...%s...", what, text[max(i-200, 0):min(i+50, len(text))])
		}
	}
	// The errors are there, naming the endpoint without its secrets: the check above looked at them.
	if !strings.Contains(log, "/events?REDACTED") || !strings.Contains(log, "status 500") {
		t.Errorf("the log does not show the failed calls with the redacted URL:\n%s", tail(log, 30))
	}
	if !strings.Contains(string(report), `/events?REDACTED`) || !strings.Contains(string(report), "no answer within 300ms") {
		t.Errorf("the on_failure record does not carry the last (timeout) error with the redacted URL: %s", report)
	}
}

// A stdout sink whose pipe nobody reads must not hold SIGTERM: the drain ends at shutdown_timeout,
// poller exits 1, and the batch whose write was cut short is not checkpointed: after a restart with
// a reader, every record has arrived. Both ways poller makes the pipe pollable are run: reopening
// it, and, when the pipe belongs to another user (a container runtime's, poller running as
// non-root), switching descriptor 1 to non-blocking mode.
func TestStdoutPipeNeverReadDoesNotHoldSIGTERMAndLosesNothing(t *testing.T) {
	t.Run("a pipe poller may reopen", func(t *testing.T) { stdoutPipeNeverRead(t, false) })
	t.Run("a pipe another user owns", func(t *testing.T) { stdoutPipeNeverRead(t, true) })
}

func stdoutPipeNeverRead(t *testing.T, foreignPipe bool) {
	const (
		n        = 300
		shutdown = 3 * time.Second
	)
	endpoint := testenv.DynamoDBLocal(t)
	db := dynamo(endpoint)
	table, leases := unique("Stuck"), unique("leases")
	createTable(t, db, table)
	writeItems(t, db, table, 0, n, 1000) // ~1.5 KB lines
	// The lease outlives shutdown_timeout by far, so that the drain limit, not the sink fence's write
	// window (lease_duration - renew_interval), is what cuts the blocked write short.
	cfg := fmt.Sprintf(`aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: %s
  lease_duration: 20s
  renew_interval: 2s
server:
  listen: ""
shutdown_timeout: %s
pipelines:
  - name: stuck
    source:
      table: %s
    batch_size: 10
    sink:
      type: stdout
`, endpoint, leases, shutdown, table)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	shrinkPipe(t, r)
	var first *proc
	if foreignPipe {
		first = startPollerAsOther(t, cfg, w)
	} else {
		first = startPollerTo(t, cfg, w)
	}
	w.Close() // the child holds the write end now: EOF comes when it exits
	// The pipe holds one page, which the first batch (~15 KB) fills: then the writer is blocked.
	waitFor(t, "poller to fill its stdout pipe", 2*time.Minute, func() bool {
		queued, capacity := pipeFill(t, r)
		return queued >= capacity
	})
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case <-first.done:
	case <-time.After(shutdown + 30*time.Second):
		t.Fatalf("poller did not exit within shutdown_timeout (%s) + 30s of SIGTERM with its stdout pipe full", shutdown)
	}
	t.Logf("exited %s after SIGTERM (shutdown_timeout %s), status %d", time.Since(sent).Round(10*time.Millisecond), shutdown, first.status)
	if first.status != 1 {
		t.Errorf("poller exited with %d after a drain cut short, want 1", first.status)
	}
	seen := completeLines(t, r) // what the first run wrote, whole lines only

	var out bytes
	second := startPollerTo(t, cfg, &out)
	missing := func() []string {
		got := map[string]bool{}
		for k := range seen {
			got[k] = true
		}
		for k := range keysOfLines(t, strings.NewReader(out.String()), false) {
			got[k] = true
		}
		var m []string
		for i := range n {
			if !got[itemKey(i)] {
				m = append(m, itemKey(i))
			}
		}
		return m
	}
	waitFor(t, "every record on the second run's stdout or the first's", 2*time.Minute, func() bool { return len(missing()) == 0 })
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("second poller exited with %d after SIGTERM, want 0", code)
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("%d records never arrived, e.g. %s", len(m), m[0])
	}
}

// startPollerAsOther starts poller with standard output going to pipe, as if that pipe belonged to
// another user: as root, poller runs as nobody (the pipe stays root's, mode 0600); otherwise the
// pipe's mode is made read-only for its owner. Either way poller cannot reopen it for writing.
func startPollerAsOther(t *testing.T, config string, pipe *os.File) *proc {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := pipe.Chmod(0o400); err != nil {
			t.Fatalf("make the pipe read-only: %v", err)
		}
		return startPollerTo(t, config, pipe)
	}
	dir, err := os.MkdirTemp("", "poller-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, cfgPath := filepath.Join(dir, "poller"), filepath.Join(dir, "poller.yaml")
	data, err := os.ReadFile(pollerBin)
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err == nil {
		err = os.WriteFile(cfgPath, []byte(config), 0o644)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, "run", "--config", cfgPath), log: &bytes{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1", "HOME="+dir)
	p.cmd.Stdout, p.cmd.Stderr = pipe, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return runProc(t, p)
}

// unique returns prefix with a suffix no other run has: the shared DynamoDB Local outlives a run.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// startPollerTo is startPoller with standard output going to stdout (poller's log stays in p.log).
func startPollerTo(t *testing.T, config string, stdout io.Writer) *proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poller.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(pollerBin, "run", "--config", path), log: &bytes{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	p.cmd.Stdout, p.cmd.Stderr = stdout, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return runProc(t, p)
}

// runProc starts p and cleans it up at the end of the test.
func runProc(t *testing.T, p *proc) *proc {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start poller: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.status = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("poller log:\n%s", tail(p.log.String(), 60))
		}
	})
	return p
}

// pipeFill returns how many bytes wait in the pipe whose read end is r, and the pipe's capacity.
func pipeFill(t *testing.T, r *os.File) (queued, capacity int) {
	t.Helper()
	const fGetPipeSz = 1032 // F_GETPIPE_SZ
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		var n int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
			errno = e
			return
		}
		c, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0)
		queued, capacity, errno = int(n), int(c), e
	}); err != nil || errno != 0 {
		t.Fatalf("inspect pipe: %v %v", err, errno)
	}
	return queued, capacity
}

// shrinkPipe makes the pipe whose read end is r hold a single page, so that it is full exactly when
// that page is: a pipe of several pages may refuse a write with room left in its last page.
func shrinkPipe(t *testing.T, r *os.File) {
	t.Helper()
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(os.Getpagesize()))
	}); err != nil || errno != 0 {
		t.Fatalf("set pipe size: %v %v", err, errno)
	}
	if _, capacity := pipeFill(t, r); capacity != os.Getpagesize() {
		t.Fatalf("pipe capacity %d, want one page (%d)", capacity, os.Getpagesize())
	}
}

// completeLines reads r to its end and returns the keys of its whole lines; a last line cut short
// (the process stopped in the middle of a write) is left out.
func completeLines(t *testing.T, r io.Reader) map[string]bool {
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if i := strings.LastIndexByte(text, '\n'); i < len(text)-1 {
		text = text[:i+1]
	}
	return keysOfLines(t, strings.NewReader(text), true)
}

// keysOfLines returns the keys of the JSON records, one per line; with strict, a line that is not a
// whole record fails the test, else it is skipped (a line still being written).
func keysOfLines(t *testing.T, r io.Reader, strict bool) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec events.DynamoDBEventRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			if strict {
				t.Fatalf("stdout line is not a whole record: %.100q: %v", sc.Text(), err)
			}
			continue
		}
		keys[keyOf(rec)] = true
	}
	return keys
}
