package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func init() {
	Register("file", nil, func(c *FileConfig, d Deps) (Sink, error) { return NewFile(*c, d) })
}

// FileConfig is the file sink's config.
type FileConfig struct {
	// Path is the file records are appended to; required. It is created if missing; its folder
	// is not.
	Path string `yaml:"path"`
}

// Validate checks every key; errors are *ConfigError.
func (c *FileConfig) Validate() error {
	if c.Path == "" {
		return &ConfigError{Key: "path", Msg: "required"}
	}
	return nil
}

// File appends each record as one JSON object per line and syncs the file before Deliver returns,
// so a delivered batch survives a crash. Concurrent deliveries are safe: one batch's lines are
// written with one write, so they stay together, and concurrent deliveries share fsyncs (see Appender).
type File struct {
	app *Appender // immutable
}

var _ Sink = (*File)(nil)

// NewFile opens (or creates) cfg.Path for appending. A missing folder is an error naming the path.
func NewFile(cfg FileConfig, _ Deps) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	app, err := OpenAppender(cfg.Path, "sink")
	if err != nil {
		return nil, err
	}
	return &File{app: app}, nil
}

// Deliver appends the batch's records and syncs. A failed write is truncated away, so that a retry
// does not leave half a batch (or half a line) behind.
func (s *File) Deliver(ctx context.Context, b Batch) error {
	return b.withLines(func(buf []byte) error { return s.app.Append(ctx, buf) })
}

// Close syncs and closes the file. Later deliveries fail; a second Close does nothing.
func (s *File) Close(ctx context.Context) error { return s.app.CloseContext(ctx) }

// Appender appends chunks of JSON lines to a file and makes each durable before Append returns. A
// chunk is written with one write, under a lock, so its lines stay together; a failed write is
// truncated away, so no half line stays. Concurrent appends share fsyncs (group commit): an append
// returns once an fsync that started after its write completed.
//
// Every wait honours the caller's context: for the lock, and for an fsync another append runs. A
// write to a regular file never waits for a reader, but the kernel cannot interrupt a write or fsync
// in progress (a hung disk); a caller whose context ends gives up waiting for it and fails, and the
// chunk, written or not, counts as not delivered (it is sent again after a restart).
type Appender struct {
	path string // immutable
	what string // "sink" or "destination", for the closed error; immutable

	// The locks are channels of capacity 1, taken with a context (lock). Order: syncTurn before turn.
	syncTurn chan struct{}
	synced   uint64 // generation made durable by the last successful fsync; guarded by syncTurn

	turn    chan struct{}
	f       *os.File // guarded by turn; nil once closed
	written uint64   // generation of the last write; guarded by turn
}

// OpenAppender opens (or creates) path for appending. A missing folder is an error naming the path.
// what names the owner in the error after Close ("sink closed").
func OpenAppender(path, what string) (*Appender, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s for appending: %w", path, err)
	}
	return &Appender{path: path, what: what, f: f, syncTurn: make(chan struct{}, 1), turn: make(chan struct{}, 1)}, nil
}

// lock takes l, or fails with ctx's error when ctx ends first.
func lock(ctx context.Context, l chan struct{}) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Append writes buf and returns once it is on disk.
func (a *Appender) Append(ctx context.Context, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to %s: %w", a.path, err)
	}
	gen, err := a.write(ctx, buf)
	if err != nil {
		return err
	}
	return a.syncThrough(ctx, gen)
}

func (a *Appender) write(ctx context.Context, buf []byte) (uint64, error) {
	if err := lock(ctx, a.turn); err != nil {
		return 0, fmt.Errorf("append to %s: waiting for another write: %w", a.path, err)
	}
	defer func() { <-a.turn }()
	if a.f == nil {
		return 0, fmt.Errorf("append to %s: %s closed", a.path, a.what)
	}
	if len(buf) == 0 {
		return a.written, nil
	}
	fi, err := a.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", a.path, err)
	}
	if _, err := a.f.Write(buf); err != nil {
		err = fmt.Errorf("append to %s: %w", a.path, err)
		if terr := a.f.Truncate(fi.Size()); terr != nil {
			err = errors.Join(err, fmt.Errorf("truncate %s back to %d bytes: %w", a.path, fi.Size(), terr))
		}
		return 0, err
	}
	a.written++
	return a.written, nil
}

// syncThrough returns once the writes up to generation gen are on disk: at once if an fsync that
// started after that write has already succeeded, else after an fsync of its own, which also covers
// every write made before it started.
func (a *Appender) syncThrough(ctx context.Context, gen uint64) error {
	if err := lock(ctx, a.syncTurn); err != nil {
		return fmt.Errorf("sync %s: waiting for another sync: %w", a.path, err)
	}
	defer func() { <-a.syncTurn }()
	if a.synced >= gen {
		return nil
	}
	if err := lock(ctx, a.turn); err != nil {
		return fmt.Errorf("sync %s: waiting for a write: %w", a.path, err)
	}
	f, target := a.f, a.written
	<-a.turn
	if f == nil {
		return fmt.Errorf("sync %s: %s closed", a.path, a.what)
	}
	// f cannot be closed meanwhile: Close takes syncTurn first.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	a.synced = target
	return nil
}

// Close syncs and closes the file. Later appends fail; a second Close does nothing.
func (a *Appender) Close() error { return a.CloseContext(context.Background()) }

// CloseContext is Close, giving up (the file stays open) when ctx ends while an append holds the
// file.
func (a *Appender) CloseContext(ctx context.Context) error {
	if err := lock(ctx, a.syncTurn); err != nil {
		return fmt.Errorf("close %s: waiting for a sync: %w", a.path, err)
	}
	defer func() { <-a.syncTurn }()
	if err := lock(ctx, a.turn); err != nil {
		return fmt.Errorf("close %s: waiting for a write: %w", a.path, err)
	}
	defer func() { <-a.turn }()
	if a.f == nil {
		return nil
	}
	f := a.f
	a.f = nil
	if err := f.Sync(); err != nil {
		_ = f.Close() // the sync error is the one that matters
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", a.path, err)
	}
	return nil
}
