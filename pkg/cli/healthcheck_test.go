package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer healthy.Close()
	wedged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "pipeline p: wedged", http.StatusServiceUnavailable)
	}))
	defer wedged.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close() // nothing listens there any more: connection refused

	dir := t.TempDir()
	writeConfig := func(name, listen string) string {
		path := filepath.Join(dir, name)
		cfg := fmt.Sprintf("server:\n  listen: %q\npipelines:\n  - name: p1\n    source:\n      table: Orders\n    sink:\n      type: http\n      url: http://127.0.0.1:1/\n", listen)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(healthy.URL, "http://"))
	anyHost := writeConfig("any-host.yaml", ":"+port)
	noServer := writeConfig("no-server.yaml", "")

	tests := []struct {
		name     string
		args     []string
		env      string
		wantCode int
		wantErr  string
	}{
		{name: "a 200 answer is healthy", args: []string{"--url", healthy.URL + "/healthz"}, wantCode: 0},
		{name: "a 503 answer is unhealthy, with its reason", args: []string{"--url", wedged.URL + "/healthz"}, wantCode: 1, wantErr: "status 503: pipeline p: wedged"},
		{name: "a refused connection is unhealthy", args: []string{"--url", goneURL + "/healthz"}, wantCode: 1, wantErr: "unhealthy"},
		{name: "no answer within the timeout is unhealthy", args: []string{"--url", hung.URL + "/healthz", "--timeout", "200ms"}, wantCode: 1, wantErr: "no answer within 200ms"},
		{name: "--config checks its server.listen, an empty host read as this host", args: []string{"--config", anyHost}, wantCode: 0},
		{name: "POLLER_CONFIG is the default config", env: anyHost, wantCode: 0},
		{name: "a config without server.listen is bad usage", args: []string{"--config", noServer}, wantCode: 2, wantErr: "server.listen is empty"},
		{name: "a config that does not load is bad usage", args: []string{"--config", filepath.Join(dir, "missing.yaml")}, wantCode: 2, wantErr: "load config"},
		{name: "--url and --config together are bad usage", args: []string{"--url", healthy.URL, "--config", anyHost}, wantCode: 2, wantErr: "not both"},
		{name: "a stray argument is bad usage", args: []string{"now"}, wantCode: 2, wantErr: "unexpected argument"},
		{name: "an unknown flag is bad usage", args: []string{"--frob"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POLLER_CONFIG", tt.env)
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), append([]string{"healthcheck"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("poller healthcheck %q = exit %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want %q in it", stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestHealthcheckDefaultsToTheDefaultListenAddress: without --url or a config, the default
// server.listen of this host is checked.
func TestHealthcheckDefaultsToTheDefaultListenAddress(t *testing.T) {
	url, timeout, ok := healthcheckTarget(nil, &bytes.Buffer{})
	if !ok || url != "http://127.0.0.1:9464/healthz" || timeout != defaultHealthTimeout {
		t.Errorf("healthcheckTarget() = %q, %s, %v; want %q, %s", url, timeout, ok, defaultHealthURL, defaultHealthTimeout)
	}
}
