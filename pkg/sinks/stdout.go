package sinks

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

func init() {
	Register(Registration{
		Type:      "stdout",
		NewConfig: func() any { return &StdoutConfig{} },
		New: func(cfg any, deps Deps) (Sink, error) {
			if _, err := configAs[StdoutConfig](cfg); err != nil {
				return nil, err
			}
			return NewStdout(deps), nil
		},
	})
}

// StdoutConfig is the stdout sink's config: it has no keys.
type StdoutConfig struct{}

// Stdout writes each record as one JSON object per line to Deps.Stdout (standard output by default),
// like File without the fsync. One batch's lines are written together.
type Stdout struct {
	mu     sync.Mutex
	w      io.Writer // immutable
	closed bool      // guarded by mu
}

var _ Sink = (*Stdout)(nil)

// NewStdout builds a stdout sink writing to deps.Stdout, or os.Stdout when that is nil.
func NewStdout(deps Deps) *Stdout {
	w := deps.Stdout
	if w == nil {
		w = os.Stdout
	}
	return &Stdout{w: w}
}

// Deliver writes the batch's records.
func (s *Stdout) Deliver(ctx context.Context, b Batch) error {
	buf, err := encodeLines(b)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write to stdout: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("write to stdout: sink closed")
	}
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("write to stdout: %w", err)
	}
	return nil
}

// Close stops further deliveries. It does not close the writer, which the sink does not own.
func (s *Stdout) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
