package sinks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

// writeDeadliner is a writer whose blocked Write can be ended: an *os.File open on a pipe in
// non-blocking mode.
type writeDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// longAgo is a deadline that has passed: setting it ends a blocked Write at once.
var longAgo = time.Unix(1, 0)

// stream writes chunks of JSON lines to one output that every sink writing there shares, so that
// chunks never interleave. A write honours its context: waiting for the turn always, and the write
// itself when the output takes write deadlines (a pipe; see openStdout). A write cut short leaves
// the start of a line in the output; the rest of that line is kept and written before anything
// else, so that the output never holds a broken line in its middle (only at its end, if the
// process exits before the output drains).
type stream struct {
	name string    // for errors, e.g. "stdout"; immutable
	w    io.Writer // immutable
	dl   writeDeadliner
	// turn is the right to write (capacity 1), taken with a context: a sync.Mutex could not be
	// given up by a delivery whose context ends while another write is blocked.
	turn chan struct{}
	// rest is the end of a line that a write cut short left unfinished; only the turn's holder
	// reads or writes it.
	rest []byte
}

// newStream returns a stream writing to w. It uses write deadlines when w takes them.
func newStream(name string, w io.Writer) *stream {
	s := &stream{name: name, w: w, turn: make(chan struct{}, 1)}
	if dl, ok := w.(writeDeadliner); ok && dl.SetWriteDeadline(time.Time{}) == nil {
		s.dl = dl // an *os.File that is not pollable (a terminal, a regular file) says ErrNoDeadline
	}
	return s
}

// write writes buf, whole lines, after the rest of a line cut short before. It returns once all of
// it is written, or with an error wrapping ctx's when ctx ended first (the write is then cut short:
// the records may be partly written, and are delivered again, like any failed call).
func (s *stream) write(ctx context.Context, buf []byte) error {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("write to %s: waiting for a blocked write: %w", s.name, ctx.Err())
	}
	defer func() { <-s.turn }()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write to %s: %w", s.name, err)
	}
	data := buf
	if len(s.rest) > 0 {
		data = append(append(make([]byte, 0, len(s.rest)+len(buf)), s.rest...), buf...)
	}
	n, err := s.writeCtx(ctx, data)
	if err == nil {
		s.rest = nil
		return nil
	}
	if n > 0 {
		s.rest = unfinishedLine(data, n) // else nothing was written: the old rest, if any, stays
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("write to %s cut short after %d of %d bytes: %w", s.name, n, len(data), cerr)
	}
	return fmt.Errorf("write to %s: %w", s.name, err)
}

// writeCtx writes data, ending a blocked write when ctx ends if the output takes deadlines.
func (s *stream) writeCtx(ctx context.Context, data []byte) (int, error) {
	if s.dl == nil {
		return s.w.Write(data)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = s.dl.SetWriteDeadline(longAgo)
	})
	n, err := s.w.Write(data)
	if !stop() {
		// The deadline was set (or is being set): clear it for the next write, once it is.
		<-fired
		_ = s.dl.SetWriteDeadline(time.Time{})
	}
	return n, err
}

// unfinishedLine returns what follows the first n bytes of data up to the end of the line that
// byte n-1 belongs to (its newline included): nil when n is 0, covers all of data, or ends a line.
func unfinishedLine(data []byte, n int) []byte {
	if n <= 0 || n >= len(data) || data[n-1] == '\n' {
		return nil
	}
	end := bytes.IndexByte(data[n:], '\n')
	if end < 0 {
		return bytes.Clone(data[n:])
	}
	return bytes.Clone(data[n : n+end+1])
}
