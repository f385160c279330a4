package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorCommandsExitCodes: bad usage, an unknown pipeline and a bad position exit 2 before any
// call; a lease table that cannot be reached exits 1, saying which call failed.
func TestOperatorCommandsExitCodes(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("POLLER_CONFIG", "")
	// A port nothing listens on: connections are refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	cfg := filepath.Join(t.TempDir(), "poller.yaml")
	yaml := fmt.Sprintf("aws:\n  region: us-east-1\n  endpoint_url: http://%s\n", closed)
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append([]byte(yaml), good...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"pause needs --pipeline", []string{"pause", "--config", cfg}, 2, "--pipeline is required"},
		{"resume of an unknown pipeline", []string{"resume", "--config", cfg, "--pipeline", "nope"}, 2, `no pipeline "nope"`},
		{"reset needs a position", []string{"reset", "--config", cfg, "--pipeline", "p1"}, 2, "--to must be TRIM_HORIZON, LATEST or an RFC 3339 time"},
		{"reset to a bad time", []string{"reset", "--config", cfg, "--pipeline", "p1", "--to", "yesterday"}, 2, `got "yesterday"`},
		{"status without a config", []string{"status"}, 2, "no config"},
		{"status with the table unreachable", []string{"status", "--config", cfg}, 1, "read the control item of pipeline p1"},
		{"pause with the table unreachable", []string{"pause", "--config", cfg, "--pipeline", "p1"}, 1, "set paused=true on pipeline p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Fatalf("Run(%q) = %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want %q in it", stderr.String(), tt.wantErr)
			}
		})
	}
}
