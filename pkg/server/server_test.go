package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "poller_test_total", Help: "a test counter"})
	reg.MustRegister(c)
	c.Add(3)
	ready := &Readiness{}
	ready.Set(false, "starting")
	srv, err := New("127.0.0.1:0", reg, ready)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
	}()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name       string
		setup      func()
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "healthz answers while starting", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "readyz is 503 with the reason while starting", path: "/readyz", wantStatus: 503, wantBody: "starting"},
		{name: "readyz is 200 once ready", setup: func() { ready.Set(true, "ready") }, path: "/readyz", wantStatus: 200, wantBody: "ready"},
		{name: "readyz turns 503 while draining", setup: func() { ready.Set(false, "shutting down") }, path: "/readyz", wantStatus: 503, wantBody: "shutting down"},
		{name: "metrics serves the injected registry", path: "/metrics", wantStatus: 200, wantBody: "poller_test_total 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			status, body := get(tt.path)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d with %q", tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// TestHealthzFollowsTheLivenessCheckAndStatusServesJSON: /healthz answers 503 with the check's
// error while it fails and 200 again once it passes; /status serves the status value as JSON.
func TestHealthzFollowsTheLivenessCheckAndStatusServesJSON(t *testing.T) {
	var wedged atomic.Bool
	live := func() error {
		if wedged.Load() {
			return errors.New("pipeline p: no lease round completed for 9s")
		}
		return nil
	}
	status := func() any { return map[string]any{"pipelines": []string{"p"}} }
	srv, err := New("127.0.0.1:0", prometheus.NewRegistry(), &Readiness{}, WithLiveness(live), WithStatus(status))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
	}
	steps := []struct {
		name       string
		wedged     bool
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "healthz is 200 while the check passes", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "healthz is 503 with the reason while it fails", wedged: true, path: "/healthz", wantStatus: 503, wantBody: "no lease round completed"},
		{name: "healthz is 200 again once it passes", path: "/healthz", wantStatus: 200, wantBody: "ok"},
		{name: "status serves the value as JSON", path: "/status", wantStatus: 200, wantBody: `"pipelines": [`},
	}
	for _, s := range steps {
		wedged.Store(s.wedged)
		status, body, _ := get(s.path)
		if status != s.wantStatus || !strings.Contains(body, s.wantBody) {
			t.Errorf("%s: GET %s = %d %q, want %d with %q", s.name, s.path, status, body, s.wantStatus, s.wantBody)
		}
	}
	var doc struct{ Pipelines []string }
	_, body, ctype := get("/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Pipelines) != 1 || ctype != "application/json" {
		t.Errorf("GET /status = %q (%s), %v; want the JSON of the status value", body, ctype, err)
	}
}

func TestReadinessCollector(t *testing.T) {
	ready := &Readiness{}
	c := ready.Collector()
	for _, tt := range []struct {
		name  string
		ready bool
		want  float64
	}{
		{name: "a process not ready shows 0", ready: false, want: 0},
		{name: "a ready process shows 1", ready: true, want: 1},
		{name: "a process shutting down shows 0 again", ready: false, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ready.Set(tt.ready, tt.name)
			if got := testutil.ToFloat64(c); got != tt.want {
				t.Errorf("poller_ready = %v, want %v", got, tt.want)
			}
		})
	}
	if n, err := testutil.GatherAndCount(registryWith(t, c), "poller_ready"); err != nil || n != 1 {
		t.Errorf("gathered %d poller_ready series (%v), want 1", n, err)
	}
}

func registryWith(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return reg
}
