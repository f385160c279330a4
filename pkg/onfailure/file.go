package onfailure

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/poller-dev/poller/pkg/sinks"
)

func init() {
	Register(Registration{
		Type:      "file",
		NewConfig: func() any { return &FileConfig{} },
		New: func(cfg any, deps Deps) (Destination, error) {
			c, err := configAs[FileConfig](cfg)
			if err != nil {
				return nil, err
			}
			return NewFile(*c, deps)
		},
	})
}

// FileConfig is the file destination's config.
type FileConfig struct {
	// Path is the file reports are appended to; required. It is created if missing; its folder is
	// not.
	Path string `yaml:"path"`
}

// Validate checks every key; errors are *sinks.ConfigError.
func (c *FileConfig) Validate() error {
	if c.Path == "" {
		return &sinks.ConfigError{Key: "path", Msg: "required"}
	}
	return nil
}

// File appends each report, with its payload, as one JSON object per line, and syncs the file before
// Send returns. Reports are rare, so each Send has its own fsync.
type File struct {
	path string // immutable

	mu sync.Mutex
	f  *os.File // guarded by mu; nil once closed
}

var _ Destination = (*File)(nil)

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

// Send appends the report and syncs. A failed write is truncated away, so that no half line stays.
func (d *File) Send(ctx context.Context, f Failure) error {
	rec, err := NewRecord(f, true)
	if err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode report for %s: %w", f.Batch.ShardID, err)
	}
	line = append(line, '\n')
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append to %s: %w", d.path, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return fmt.Errorf("append to %s: destination closed", d.path)
	}
	fi, err := d.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", d.path, err)
	}
	if _, err := d.f.Write(line); err != nil {
		if terr := d.f.Truncate(fi.Size()); terr != nil {
			return fmt.Errorf("append to %s: %w (and truncate back: %v)", d.path, err, terr)
		}
		return fmt.Errorf("append to %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	return nil
}

// Close closes the file; later sends fail, a second Close does nothing.
func (d *File) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	f := d.f
	d.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", d.path, err)
	}
	return nil
}
