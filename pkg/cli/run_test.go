package cli

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStopOnSignal(t *testing.T) {
	t.Run("a done context drains gracefully, then stops at once after shutdown_timeout", func(t *testing.T) {
		ctx, stopRequest := context.WithCancel(context.Background())
		runCtx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop, forced, done := stopOnSignal(ctx, cancel, 10*time.Millisecond, zap.NewNop())
		defer done()
		select {
		case <-stop:
			t.Fatal("stop is closed before anything asked for it")
		default:
		}
		stopRequest()
		select {
		case <-stop:
		case <-time.After(10 * time.Second):
			t.Fatal("stop was not closed after ctx was done")
		}
		select {
		case <-runCtx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the run was not canceled once the drain outlived shutdown_timeout")
		}
		if !forced.Load() {
			t.Error("forced = false after a drain cut short, want true")
		}
	})
	t.Run("a run that ends before any stop is not forced", func(t *testing.T) {
		_, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, forced, done := stopOnSignal(context.Background(), cancel, time.Millisecond, zap.NewNop())
		done()
		if forced.Load() {
			t.Error("forced = true, want false")
		}
	})
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"version"}, &stdout, &stderr, WithVersion("v1.2.3")); code != ExitOK {
		t.Fatalf("Run(version) = %d, want %d", code, ExitOK)
	}
	if got := stdout.String(); got != "poller v1.2.3\n" {
		t.Errorf("Run(version) printed %q, want %q", got, "poller v1.2.3\n")
	}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"poller built as the main module shows its version",
			debug.BuildInfo{Main: debug.Module{Path: module, Version: "v1.0.0"}}, "v1.0.0"},
		{"a binary of another module shows the poller version it requires",
			debug.BuildInfo{Main: debug.Module{Path: "example.com/x", Version: "v0.1.0"}, Deps: []*debug.Module{{Path: module, Version: "v1.1.0"}}}, "v1.1.0"},
		{"a poller replaced by a folder shows as built from source",
			debug.BuildInfo{Main: debug.Module{Path: "example.com/x"}, Deps: []*debug.Module{{Path: module, Version: "v0.0.0", Replace: &debug.Module{Path: "../..", Version: "(devel)"}}}}, "(devel)"},
		{"a binary without poller's module says dev",
			debug.BuildInfo{Main: debug.Module{Path: "example.com/x", Version: "v0.1.0"}}, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := moduleVersion(&tt.bi); got != tt.want {
				t.Errorf("moduleVersion() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"help"}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("Run(help) = %d, want %d", code, ExitOK)
	}
	for _, cmd := range []string{"poller run", "poller validate", "poller version"} {
		if !strings.Contains(stdout.String(), cmd) {
			t.Errorf("help = %q, want it to list %q", stdout.String(), cmd)
		}
	}
}
