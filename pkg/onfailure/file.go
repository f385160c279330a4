package onfailure

import (
	"context"

	"github.com/poller-dev/poller/pkg/sinks"
)

func init() {
	Register("file", nil, func(c *FileConfig, d Deps) (Destination, error) { return NewFile(*c, d) })
}

// FileConfig is the file destination's config: `path`, required, the file reports are appended to
// (created if missing; its folder is not). It is the file sink's.
type FileConfig = sinks.FileConfig

// File appends each report, with its payload, as one JSON object per line, and syncs the file before
// Send returns.
type File struct {
	app *sinks.Appender // immutable
}

var _ Destination = (*File)(nil)

// NewFile opens (or creates) cfg.Path for appending. A missing folder is an error naming the path.
func NewFile(cfg FileConfig, _ Deps) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	app, err := sinks.OpenAppender(cfg.Path, "destination")
	if err != nil {
		return nil, err
	}
	return &File{app: app}, nil
}

// Send appends the report and syncs. A failed write is truncated away, so that no half line stays.
func (d *File) Send(ctx context.Context, f Failure) error {
	line, err := encode(f, true)
	if err != nil {
		return err
	}
	return d.app.Append(ctx, append(line, '\n'))
}

// Close syncs and closes the file; later sends fail, a second Close does nothing.
func (d *File) Close(ctx context.Context) error { return d.app.CloseContext(ctx) }
