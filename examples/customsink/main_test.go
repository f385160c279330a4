package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/cli"
	"github.com/poller-dev/poller/pkg/onfailure"
	"github.com/poller-dev/poller/pkg/sinks"
)

// An on_failure destination type registered by this module (here by its test) is checked like a
// built-in one too. It only counts the reports it is sent.
func init() {
	onfailure.Register("counting",
		func() *countingConfig { return &countingConfig{Limit: 10} },
		func(*countingConfig, onfailure.Deps) (onfailure.Destination, error) { return &counting{}, nil })
}

type countingConfig struct {
	Limit int `yaml:"limit"`
}

func (c *countingConfig) Validate() error {
	if c.Limit < 1 {
		return &sinks.ConfigError{Key: "limit", Msg: fmt.Sprintf("must be at least 1, got %d", c.Limit)}
	}
	return nil
}

type counting struct {
	mu sync.Mutex
	n  int
}

func (c *counting) Send(context.Context, onfailure.Failure) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return nil
}

func (c *counting) Close(context.Context) error { return nil }

// TestMain starts nothing itself: the end-to-end test starts DynamoDB Local through testenv, which
// stops it at the end and checks that no goroutine was left behind.
func TestMain(m *testing.M) { testenv.VerifyMain(m) }

// sinkConfig is a config with one pipeline into a changelog sink; sink holds the sink's keys.
func sinkConfig(endpoint, table, sink string) string {
	return fmt.Sprintf(`aws:
  region: us-east-1
  endpoint_url: %s
leases:
  table: %s-leases
server:
  listen: ""
shutdown_timeout: 10s
pipelines:
  - name: changes
    source:
      table: %s
    poll_interval: 50ms
    sink:
      type: changelog
%s
`, endpoint, table, table, sink)
}

func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poller.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValidate shows the config loader checking the keys of the custom sink (and of a custom
// on_failure type) as it checks a built-in one's: an unknown key and what the type's Validate rejects
// are file:line errors.
func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		sink     string
		wantCode int
		wantErr  string // a line of stderr; the sink's keys (and what follows them) start at line 16
	}{
		{name: "a valid changelog sink", sink: "      path: changes.log\n      events: [INSERT]", wantCode: cli.ExitOK},
		{name: "an unknown key of the custom sink is an error at its line", sink: "      path: changes.log\n      pathh: x",
			wantCode: cli.ExitUsage, wantErr: "poller.yaml:17: pipelines[0].sink.pathh: unknown key"},
		{name: "a required key of the custom sink is missing", sink: "      events: [INSERT]",
			wantCode: cli.ExitUsage, wantErr: "pipelines[0].sink.path: required"},
		{name: "what the custom sink's Validate rejects is an error at the key's line", sink: "      path: changes.log\n      events: [UPSERT]",
			wantCode: cli.ExitUsage, wantErr: `poller.yaml:17: pipelines[0].sink.events: must hold INSERT, MODIFY or REMOVE, got "UPSERT"`},
		{name: "a wrong type for a key of the custom sink", sink: "      path: [a, b]",
			wantCode: cli.ExitUsage, wantErr: "poller.yaml:16: pipelines[0].sink.path:"},
		{name: "a custom on_failure type is accepted", sink: "      path: changes.log\n    on_failure:\n      type: counting\n      limit: 3",
			wantCode: cli.ExitOK},
		{name: "an unknown key of a custom on_failure type is an error at its line", sink: "      path: changes.log\n    on_failure:\n      type: counting\n      lmit: 3",
			wantCode: cli.ExitUsage, wantErr: "poller.yaml:19: pipelines[0].on_failure.lmit: unknown key"},
		{name: "what a custom on_failure type's Validate rejects is an error at the key's line", sink: "      path: changes.log\n    on_failure:\n      type: counting\n      limit: 0",
			wantCode: cli.ExitUsage, wantErr: "poller.yaml:19: pipelines[0].on_failure.limit: must be at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, sinkConfig("http://127.0.0.1:8000", "orders", tt.sink))
			var stdout, stderr bytes.Buffer
			code := cli.Run(context.Background(), []string{"validate", "--config", path}, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("poller validate = exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if tt.wantErr != "" && !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want a line containing %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

// TestRunDeliversThroughTheCustomSink runs poller's run command end to end against DynamoDB Local:
// items written to a table arrive, through the table's stream, as lines of the changelog sink; then
// a stop drains and exits 0.
func TestRunDeliversThroughTheCustomSink(t *testing.T) {
	endpoint := testenv.DynamoDBLocal(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	db := testenv.DynamoDB(endpoint)
	const table, items = "customsink-orders", 60
	testenv.CreateStreamTable(t, db, table)
	testenv.WriteItems(t, db, table, 0, items, 10)

	out := filepath.Join(t.TempDir(), "changes.log")
	path := writeConfig(t, sinkConfig(endpoint, table, "      path: "+out))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- cli.Run(ctx, []string{"run", "--config", path}, &bytes.Buffer{}, &stderr) }()

	lines := waitLines(t, out, items, exit, &stderr)
	for i, line := range lines {
		if want := fmt.Sprintf(`INSERT {"pk":{"S":"item-%06d"}}`, i); line != want {
			t.Errorf("line %d = %q, want %q", i+1, line, want)
		}
	}
	stop()
	select {
	case code := <-exit:
		if code != cli.ExitOK {
			t.Errorf("poller run = exit %d after a graceful stop, want %d; log:\n%s", code, cli.ExitOK, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("poller run did not stop within 30s of the stop; log:\n%s", stderr.String())
	}
}

// waitLines polls the changelog file until it holds n lines and returns them; it fails the test if
// poller exits first or a minute passes.
func waitLines(t *testing.T, path string, n int, exit <-chan int, log *syncBuffer) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(data) > 0 && len(lines) >= n {
			return lines
		}
		select {
		case code := <-exit:
			t.Fatalf("poller run exited %d before the records arrived; log:\n%s", code, log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the changelog holds %d of %d lines after a minute; log:\n%s", len(lines), n, log.String())
		}
	}
}

// syncBuffer is a bytes.Buffer that poller's logger and the test may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
