package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

func init() {
	Register(Registration{
		Type:      "file",
		NewConfig: func() any { return &FileConfig{} },
		New: func(cfg any, deps Deps) (Sink, error) {
			c, err := configAs[FileConfig](cfg)
			if err != nil {
				return nil, err
			}
			return NewFile(*c, deps)
		},
	})
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
	buf, err := encodeLines(b)
	if err != nil {
		return err
	}
	return s.app.Append(ctx, buf)
}

// Close syncs and closes the file. Later deliveries fail; a second Close does nothing.
func (s *File) Close(context.Context) error { return s.app.Close() }

// Appender appends chunks of JSON lines to a file and makes each durable before Append returns. A
// chunk is written with one write, under a lock, so its lines stay together; a failed write is
// truncated away, so no half line stays. Concurrent appends share fsyncs (group commit): an append
// returns once an fsync that started after its write completed.
type Appender struct {
	path string // immutable
	what string // "sink" or "destination", for the closed error; immutable

	// Lock order: syncMu before mu.
	syncMu sync.Mutex
	synced uint64 // generation made durable by the last successful fsync; guarded by syncMu

	mu      sync.Mutex
	f       *os.File // guarded by mu; nil once closed
	written uint64   // generation of the last write; guarded by mu
}

// OpenAppender opens (or creates) path for appending. A missing folder is an error naming the path.
// what names the owner in the error after Close ("sink closed").
func OpenAppender(path, what string) (*Appender, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s for appending: %w", path, err)
	}
	return &Appender{path: path, what: what, f: f}, nil
}

// Append writes buf and returns once it is on disk.
func (a *Appender) Append(ctx context.Context, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to %s: %w", a.path, err)
	}
	gen, err := a.write(buf)
	if err != nil {
		return err
	}
	return a.syncThrough(gen)
}

func (a *Appender) write(buf []byte) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
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
func (a *Appender) syncThrough(gen uint64) error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	if a.synced >= gen {
		return nil
	}
	a.mu.Lock()
	f, target := a.f, a.written
	a.mu.Unlock()
	if f == nil {
		return fmt.Errorf("sync %s: %s closed", a.path, a.what)
	}
	// f cannot be closed meanwhile: Close takes syncMu first.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	a.synced = target
	return nil
}

// Close syncs and closes the file. Later appends fail; a second Close does nothing.
func (a *Appender) Close() error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
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
