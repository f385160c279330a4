package sinks

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// openStdout returns the writer the stdout sink uses for the process's standard output. When that
// is a pipe (a container runtime's, `poller run | consumer`), it is opened a second time, through
// /proc, in non-blocking mode: the new open file description is pollable, so a write blocked by a
// reader that stopped reading can be ended by a deadline, and it does not change the mode of file
// descriptor 1 itself, which other processes (and poller's own stderr after 2>&1) may share.
// Anything else (a terminal, a file, a socket), or a failure to reopen, is written to as it is:
// those do not block on a reader, or cannot be reopened.
func openStdout() io.Writer {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stdout.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return os.Stdout
	}
	f, err := os.OpenFile("/proc/self/fd/1", os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return os.Stdout
	}
	return brokenPipeExits{f}
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
