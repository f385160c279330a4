package service

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/hooks"
)

// pausedSeen records a pipeline's paused states and lease rounds.
type pausedSeen struct {
	mu     sync.Mutex
	paused []bool
	rounds int
}

func (p *pausedSeen) OnPipelinePaused(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = append(p.paused, v)
}
func (p *pausedSeen) OnLeaseRound(error) { p.mu.Lock(); defer p.mu.Unlock(); p.rounds++ }
func (p *pausedSeen) state() ([]bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bool(nil), p.paused...), p.rounds
}

// TestDisabledPipelineIsNotStarted: a pipeline with enabled: false is not run (no lease round, no
// heartbeat in the lease table) and is reported paused; the enabled one runs beside it.
func TestDisabledPipelineIsNotStarted(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	endpoint := testenv.DynamoDBLocal(t)
	db := testenv.DynamoDB(endpoint)
	cfg := config.Default()
	cfg.Leases.Table = fmt.Sprintf("leases-enabled-%d", time.Now().UnixNano())
	cfg.AWS = config.AWS{Region: "us-east-1", EndpointURL: endpoint}
	cfg.Server.Listen = ""
	off := false
	for _, name := range []string{"on", "off"} {
		p := config.DefaultPipeline()
		table := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
		testenv.CreateStreamTable(t, db, table)
		p.Name, p.Source.Table = name, table
		p.Sink = config.Plugin{Type: "stdout"}
		if name == "off" {
			p.Enabled = &off
		}
		cfg.Pipelines = append(cfg.Pipelines, p)
	}
	seen := map[string]*pausedSeen{"on": {}, "off": {}}
	a, err := New(context.Background(), &cfg, zap.NewNop(), WithHooks(func(pipeline string) []hooks.Hook {
		return []hooks.Hook{seen[pipeline]}
	}))
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background(), stop) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, n := seen["on"].state(); n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the enabled pipeline ran no lease round within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Liveness watches the pipelines that run lease rounds, never a disabled one (it would look
	// wedged after 3 x lease_duration and get the process restarted).
	a.health.mu.Lock()
	watched := slices.Clone(a.health.names)
	a.health.mu.Unlock()
	if !slices.Equal(watched, []string{"on"}) {
		t.Errorf("liveness watches %q, want only the enabled pipeline", watched)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after a stop, want nil", err)
	}
	paused, rounds := seen["off"].state()
	if rounds != 0 || len(paused) != 1 || !paused[0] {
		t.Fatalf("disabled pipeline: %d lease rounds, paused states %v; want none and [true]", rounds, paused)
	}
	if p, _ := seen["on"].state(); len(p) == 0 || p[0] {
		t.Fatalf("enabled pipeline: paused states %v, want false first", p)
	}
	leases, workers, err := checkpoint.New(db, cfg.Leases.Table).List(t.Context(), "off")
	if err != nil || len(leases) != 0 || len(workers) != 0 {
		t.Fatalf("lease table of the disabled pipeline: %v, %v, %v; want nothing", leases, workers, err)
	}
}
