package sinks

import (
	"context"
	"fmt"
	"sync"
)

func init() {
	Register("stdout", nil, func(_ *StdoutConfig, d Deps) (Sink, error) { return NewStdout(d), nil })
}

// StdoutConfig is the stdout sink's config: it has no keys.
type StdoutConfig struct{}

// Stdout writes each record as one JSON object per line to Deps.Stdout (standard output by default),
// like File without the fsync. One batch's lines are written together, never interleaved with
// another batch's, also across the sinks of several pipelines. A delivery honours its context: a
// write blocked because nobody reads standard output (a full pipe) ends when the context does
// (see stream), so it cannot hold a shutdown past shutdown_timeout; the batch then counts as failed.
type Stdout struct {
	out *stream // immutable; shared by every sink writing to the process's standard output

	mu     sync.Mutex
	closed bool // guarded by mu
}

var _ Sink = (*Stdout)(nil)

var (
	stdoutOnce   sync.Once
	stdoutStream *stream // the process's standard output, set once by sharedStdout
)

// sharedStdout returns the one stream of the process's standard output.
func sharedStdout() *stream {
	stdoutOnce.Do(func() { stdoutStream = newStream("stdout", openStdout()) })
	return stdoutStream
}

// NewStdout builds a stdout sink writing to deps.Stdout, or the process's standard output when that
// is nil.
func NewStdout(deps Deps) *Stdout {
	if deps.Stdout == nil {
		return &Stdout{out: sharedStdout()}
	}
	return &Stdout{out: newStream("stdout", deps.Stdout)}
}

// Deliver writes the batch's records.
func (s *Stdout) Deliver(ctx context.Context, b Batch) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("write to stdout: sink closed")
	}
	// write keeps no part of buf (the rest of a line cut short is copied).
	return b.withLines(func(buf []byte) error { return s.out.write(ctx, buf) })
}

// Close stops further deliveries. It does not close the writer, which the sink does not own.
func (s *Stdout) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
