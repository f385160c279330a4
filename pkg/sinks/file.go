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
// written with one write, under a lock, so they stay together. Concurrent deliveries also share
// fsyncs (group commit): a delivery returns once an fsync that started after its write completed.
type File struct {
	path string // immutable

	// Lock order: syncMu before mu.
	syncMu sync.Mutex
	synced uint64 // generation made durable by the last successful fsync; guarded by syncMu

	mu      sync.Mutex
	f       *os.File // guarded by mu; nil once closed
	written uint64   // generation of the last write; guarded by mu
}

var _ Sink = (*File)(nil)

// NewFile opens (or creates) cfg.Path for appending. A missing folder is an error naming the path.
func NewFile(cfg FileConfig, _ Deps) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s for appending: %w", cfg.Path, err)
	}
	return &File{path: cfg.Path, f: f}, nil
}

// Deliver appends the batch's records and syncs. A failed write is truncated away, so that a retry
// does not leave half a batch (or half a line) behind.
func (s *File) Deliver(ctx context.Context, b Batch) error {
	buf, err := encodeLines(b)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to %s: %w", s.path, err)
	}
	gen, err := s.write(buf)
	if err != nil {
		return err
	}
	return s.syncThrough(gen)
}

func (s *File) write(buf []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("append to %s: sink closed", s.path)
	}
	if len(buf) == 0 {
		return s.written, nil
	}
	fi, err := s.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", s.path, err)
	}
	if _, err := s.f.Write(buf); err != nil {
		err = fmt.Errorf("append to %s: %w", s.path, err)
		if terr := s.f.Truncate(fi.Size()); terr != nil {
			err = errors.Join(err, fmt.Errorf("truncate %s back to %d bytes: %w", s.path, fi.Size(), terr))
		}
		return 0, err
	}
	s.written++
	return s.written, nil
}

// syncThrough returns once the writes up to generation gen are on disk: at once if an fsync that
// started after that write has already succeeded, else after an fsync of its own, which also covers
// every write made before it started.
func (s *File) syncThrough(gen uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= gen {
		return nil
	}
	s.mu.Lock()
	f, target := s.f, s.written
	s.mu.Unlock()
	if f == nil {
		return fmt.Errorf("sync %s: sink closed", s.path)
	}
	// f cannot be closed meanwhile: Close takes syncMu first.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	s.synced = target
	return nil
}

// Close syncs and closes the file. Later deliveries fail; a second Close does nothing.
func (s *File) Close(context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	if err := f.Sync(); err != nil {
		_ = f.Close() // the sync error is the one that matters
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}
