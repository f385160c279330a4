package service

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStopWhileTheLeaseTableIsUnreachable: while the lease table cannot be reached, readiness says
// so and Run keeps retrying; a graceful stop then ends Run with nil.
func TestStopWhileTheLeaseTableIsUnreachable(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	// A port that refuses connections: listen, note the address, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()

	cfg := config.Default()
	cfg.AWS = config.AWS{Region: "us-east-1", EndpointURL: endpoint}
	cfg.Server.Listen = ""
	p := config.DefaultPipeline()
	p.Name, p.Source.Table = "orders", "Orders"
	p.Sink = config.Plugin{Type: "stdout"}
	cfg.Pipelines = []config.Pipeline{p}

	a, err := New(context.Background(), &cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), stop) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, reason := a.ready.State(); !ok && strings.Contains(reason, "lease table unreachable") {
			break
		}
		if time.Now().After(deadline) {
			_, reason := a.ready.State()
			t.Fatalf("readiness = %q after 30s, want it to say the lease table is unreachable", reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v after a stop, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of the stop")
	}
}
