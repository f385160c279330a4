// Package changelog is an example of a custom poller sink: it appends one line per record to a file,
// "<event name> <keys as JSON>", e.g. `INSERT {"pk":{"S":"item-1"}}`, a human-readable log of what
// changed in a table. Importing the package registers the sink type "changelog":
//
//	sink:
//	  type: changelog
//	  path: orders.changes.log   # required
//	  events: [INSERT, REMOVE]        # optional: only these event names (default: all)
package changelog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/poller-dev/poller/pkg/sinks"
)

// Type is the sink's `type` in a config.
const Type = "changelog"

func init() {
	// The config loader decodes the sink's other keys into a *Config made by the defaults function
	// (unknown keys are errors at their file:line), calls its Validate, and then the build function.
	sinks.Register(Type,
		func() *Config { return &Config{} },
		func(c *Config, _ sinks.Deps) (sinks.Sink, error) { return New(*c) })
}

// eventNames are the event names DynamoDB Streams records carry.
var eventNames = []string{"INSERT", "MODIFY", "REMOVE"}

// Config is the changelog sink's config: the keys under `sink:` besides `type`.
type Config struct {
	// Path is the file the lines are appended to; required. It is created if missing.
	Path string `yaml:"path"`
	// Events keeps only the records of these event names: INSERT, MODIFY, REMOVE. Default: all.
	Events []string `yaml:"events"`
}

// Validate checks every key. Each error is a *sinks.ConfigError naming its key, which the config
// loader reports at that key's line: `poller.yaml:12: pipelines[0].sink.events: ...`.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, &sinks.ConfigError{Key: "path", Msg: "required"})
	}
	for _, e := range c.Events {
		if !slices.Contains(eventNames, e) {
			errs = append(errs, &sinks.ConfigError{Key: "events", Msg: fmt.Sprintf("must hold INSERT, MODIFY or REMOVE, got %q", e)})
		}
	}
	return errors.Join(errs...)
}

// Sink appends a batch's lines with one write and syncs before Deliver returns, so that a batch
// poller checkpoints is on disk. Deliver is safe for concurrent use: a lock keeps each batch's lines
// together.
type Sink struct {
	events []string // immutable
	mu     sync.Mutex
	f      *os.File
}

var _ sinks.Sink = (*Sink)(nil)

// New opens (or creates) cfg.Path for appending.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	return &Sink{events: cfg.Events, f: f}, nil
}

// Deliver appends one line per record of b that Events keeps. An error fails the whole batch: poller
// retries it, so a line may be written twice (at-least-once delivery, as with Lambda).
func (s *Sink) Deliver(ctx context.Context, b sinks.Batch) error {
	var buf bytes.Buffer
	for _, r := range b.Records {
		if len(s.events) > 0 && !slices.Contains(s.events, r.EventName) {
			continue
		}
		keys, err := json.Marshal(r.Change.Keys)
		if err != nil {
			return fmt.Errorf("record %s: keys: %w", r.Change.SequenceNumber, err)
		}
		fmt.Fprintf(&buf, "%s %s\n", r.EventName, keys)
	}
	if buf.Len() == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("append to %s: %w", s.f.Name(), err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}
