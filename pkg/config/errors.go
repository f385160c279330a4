package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is one problem in a config file, located by line and key path. Parse and Load return every
// problem they find, joined with errors.Join; Errors lists them.
type Error struct {
	File string // the file name as given to Load or Parse
	Line int    // 1-based; 0 when the problem has no line (an empty file, say)
	Path string // the key path, e.g. pipelines[0].batch_size; empty for the file as a whole
	Msg  string // what is wrong, with the value found and what is allowed
}

// Error prints the problem as file:line: path: msg, e.g.
// `poller.yaml:14: pipelines[0].batch_size: must be 1..10000, got 0`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		} else {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors lists the config problems in err, in file order; `poller validate` prints one per line. It
// returns nil when err holds no *Error (a file that could not be read, say).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// joinErrors returns errs as one error, or nil when there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
