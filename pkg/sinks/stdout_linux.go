package sinks

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// openStdout returns the writer the stdout sink uses for the process's standard output. When that
// is a pipe (a container runtime's, `poller run | consumer`), the writer is pollable, so that a
// write blocked by a reader that stopped reading can be ended by a deadline:
//
//   - the pipe is opened a second time, through /proc, in non-blocking mode: a new open file
//     description, so the mode of file descriptor 1 itself, which other processes (and poller's own
//     stderr after 2>&1) may share, does not change;
//   - when that is refused (a pipe owned by another user: a container runtime's, with poller running
//     as non-root; no /proc), file descriptor 1 itself is switched to non-blocking mode, unless
//     stderr is the same pipe: its writes would then fail instead of waiting.
//
// Anything else (a terminal, a file, a socket) is written to as it is: those do not block on a
// reader, or cannot be reopened.
func openStdout() io.Writer {
	var out syscall.Stat_t
	if err := syscall.Fstat(1, &out); err != nil || out.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return os.Stdout
	}
	if f, err := os.OpenFile("/proc/self/fd/1", os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		return brokenPipeExits{f}
	}
	var errOut syscall.Stat_t
	if err := syscall.Fstat(2, &errOut); err == nil && errOut.Dev == out.Dev && errOut.Ino == out.Ino {
		return os.Stdout
	}
	if err := syscall.SetNonblock(1, true); err != nil {
		return os.Stdout
	}
	// A second *os.File for descriptor 1, pollable since the descriptor is non-blocking now. It is
	// kept for the life of the process (sharedStdout), so its finalizer never closes descriptor 1.
	return brokenPipeExits{os.NewFile(1, "/dev/stdout")}
}

// brokenPipeExits writes to a reopened standard output. A write to a pipe whose reader is gone
// fails with EPIPE on a descriptor other than 1, where the Go runtime would end the process with
// SIGPIPE: the same bytes are then written to os.Stdout, so poller stops as it always did when its
// standard output is closed (and is restarted with a fresh one) instead of retrying forever.
type brokenPipeExits struct{ *os.File }

func (b brokenPipeExits) Write(p []byte) (int, error) {
	n, err := b.File.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		_, _ = os.Stdout.Write(p[n:])
	}
	return n, err
}
