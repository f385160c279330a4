package service

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
)

func TestMain(m *testing.M) { testenv.VerifyMain(m) }

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

// TestNewChecksAConfigBuiltInCode: New rejects what config.Load would, naming the key path.
func TestNewChecksAConfigBuiltInCode(t *testing.T) {
	cfg := config.Default()
	p := config.DefaultPipeline()
	p.Name, p.Source.Table, p.BatchSize = "orders", "Orders", 0
	p.Sink = config.Plugin{Type: "no-such-sink"}
	cfg.Pipelines = []config.Pipeline{p}
	_, err := New(context.Background(), &cfg, zap.NewNop())
	var got []string
	for _, e := range config.Errors(err) {
		got = append(got, e.Error())
	}
	want := []string{
		"pipelines[0].batch_size: must be 1..10000, got 0",
		`pipelines[0].sink.type: unknown sink type "no-such-sink"`,
	}
	if len(got) != len(want) {
		t.Fatalf("New() = %v, want the errors %q", err, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d = %q, want it to start with %q", i, got[i], want[i])
		}
	}
}

// roundsSeen is a caller's hook: it counts the lease rounds its pipeline reports.
type roundsSeen struct {
	mu     sync.Mutex
	rounds int
}

func (r *roundsSeen) OnLeaseRound(error) {
	r.mu.Lock()
	r.rounds++
	r.mu.Unlock()
}

func (r *roundsSeen) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rounds
}

// TestWithHooksGivesEveryPipelineTheCallersHooks: the hooks a caller adds with WithHooks are asked
// for once per pipeline, by name, and told what that pipeline does (here, its lease rounds against
// DynamoDB Local).
func TestWithHooksGivesEveryPipelineTheCallersHooks(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := testenv.DynamoDBLocal(t)
	db := testenv.DynamoDB(endpoint)
	cfg := config.Default()
	cfg.Leases.Table = fmt.Sprintf("leases-hooks-%d", time.Now().UnixNano())
	cfg.AWS = config.AWS{Region: "us-east-1", EndpointURL: endpoint}
	cfg.Server.Listen = ""
	for _, name := range []string{"orders", "payments"} {
		p := config.DefaultPipeline()
		table := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
		testenv.CreateStreamTable(t, db, table)
		p.Name, p.Source.Table = name, table
		p.Sink = config.Plugin{Type: "stdout"}
		cfg.Pipelines = append(cfg.Pipelines, p)
	}
	seen := map[string]*roundsSeen{}
	a, err := New(context.Background(), &cfg, zap.NewNop(), WithHooks(func(pipeline string) []hooks.Hook {
		seen[pipeline] = &roundsSeen{} // New calls this from its own goroutine, before Run
		return []hooks.Hook{seen[pipeline]}
	}))
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if len(seen) != 2 || seen["orders"] == nil || seen["payments"] == nil {
		t.Fatalf("WithHooks was asked for %v, want orders and payments", slices.Collect(maps.Keys(seen)))
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), stop) }()
	deadline := time.Now().Add(30 * time.Second)
	for seen["orders"].count() == 0 || seen["payments"].count() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lease rounds seen after 30s: orders %d, payments %d; want both > 0", seen["orders"].count(), seen["payments"].count())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after a stop, want nil", err)
	}
}
