package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/control"
	"github.com/poller-dev/poller/pkg/service"
)

// The operator's commands: status, pause, resume and reset. Each reads the config for its aws and
// leases sections and talks to the lease table alone (package control); exit 0 done, 1 the lease
// table failed (the message says which call and why), 2 bad usage or config, or refused.

// opTimeout bounds one operator command's calls to the lease table.
const opTimeout = time.Minute

// opCommand is the setup every operator command shares: its config, the pipelines it names (all
// of them for "" unless required) and the lease table.
type opCommand struct {
	name   string
	cfg    *config.Config
	chosen []config.Pipeline
	table  control.Table
}

// openOp loads the config and the lease table for command name; pipeline "" chooses every pipeline
// unless required. It returns the exit code to stop with, or -1 to go on.
func openOp(ctx context.Context, name string, args []string, stderr io.Writer, required bool, define func(*flag.FlagSet)) (*opCommand, int) {
	var pipeline string
	cfg, ok := loadConfigWith(name, args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&pipeline, "pipeline", "", "pipeline name (as in the config)")
		if define != nil {
			define(fs)
		}
	})
	if !ok {
		return nil, ExitUsage
	}
	op := &opCommand{name: name, cfg: cfg}
	for _, p := range cfg.Pipelines {
		if pipeline == "" || p.Name == pipeline {
			op.chosen = append(op.chosen, p)
		}
	}
	switch {
	case pipeline == "" && required:
		fmt.Fprintf(stderr, "poller %s: --pipeline is required\n", name)
		return nil, ExitUsage
	case len(op.chosen) == 0:
		fmt.Fprintf(stderr, "poller %s: no pipeline %q in %s\n", name, pipeline, cfg.File)
		return nil, ExitUsage
	}
	store, err := service.LeaseStore(ctx, cfg, zap.NewNop())
	if err != nil {
		fmt.Fprintf(stderr, "poller %s: %v\n", name, err)
		return nil, ExitFailure
	}
	op.table = store
	return op, -1
}

// fail prints err and returns its exit code: ExitUsage for a refused request, else ExitFailure.
func (op *opCommand) fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "poller %s: %v\n", op.name, err)
	if errors.Is(err, control.ErrRefused) {
		return ExitUsage
	}
	return ExitFailure
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	op, code := openOp(ctx, "status", args, stderr, false, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status document as JSON")
	})
	if op == nil {
		return code
	}
	qs := make([]control.Query, 0, len(op.chosen))
	for _, p := range op.chosen {
		qs = append(qs, control.Query{Name: p.Name, StreamARN: p.Source.StreamARN, Enabled: p.IsEnabled(), Live: op.cfg.Leases.LeaseDuration})
	}
	doc, err := control.Status(ctx, op.table, qs, time.Now())
	if err != nil {
		return op.fail(stderr, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(doc)
	} else {
		err = control.WriteTable(stdout, doc)
	}
	if err != nil {
		return op.fail(stderr, err)
	}
	return ExitOK
}

func pauseCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return setPaused(ctx, "pause", args, stdout, stderr, true)
}

func resumeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return setPaused(ctx, "resume", args, stdout, stderr, false)
}

func setPaused(ctx context.Context, name string, args []string, stdout, stderr io.Writer, paused bool) int {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	op, code := openOp(ctx, name, args, stderr, true, nil)
	if op == nil {
		return code
	}
	p := op.chosen[0].Name
	if err := control.SetPaused(ctx, op.table, p, paused); err != nil {
		return op.fail(stderr, err)
	}
	within := op.cfg.Leases.RenewInterval
	if paused {
		fmt.Fprintf(stdout, "pipeline %s paused: every replica stops reading it within %s (batches in flight finish and are checkpointed; leases are kept)\n", p, within)
	} else {
		fmt.Fprintf(stdout, "pipeline %s resumed: every replica reads on from its checkpoints within %s\n", p, within)
	}
	return ExitOK
}

func resetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var to, shard string
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	op, code := openOp(ctx, "reset", args, stderr, true, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "TRIM_HORIZON, LATEST or an RFC 3339 time")
		fs.StringVar(&shard, "shard", "", "reset this shard (and its descendants) only")
	})
	if op == nil {
		return code
	}
	pos, err := control.ParsePosition(to)
	if err != nil {
		fmt.Fprintf(stderr, "poller reset: %v\n", err)
		return ExitUsage
	}
	p := op.chosen[0]
	changes, err := control.Reset(ctx, op.table, control.ResetRequest{
		Pipeline: p.Name, StreamARN: p.Source.StreamARN, To: pos, Shard: shard, Now: time.Now(),
		Settle: op.cfg.Leases.RenewInterval,
	})
	for _, c := range changes {
		from := c.From
		switch {
		case c.Finished:
			from = "finished at " + cmp.Or(c.From, "(empty)")
		case from == "":
			from = "no checkpoint"
		}
		fmt.Fprintf(stdout, "%s: %s -> %s\n", c.ShardID, from, c.To)
	}
	if err != nil {
		return op.fail(stderr, err)
	}
	fmt.Fprintf(stdout, "reset %d shard(s) of pipeline %s to %s; they restart there after poller resume\n", len(changes), p.Name, pos)
	return ExitOK
}
