package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipeFill returns how many bytes wait in the pipe whose read end is r, and the pipe's capacity.
func pipeFill(t *testing.T, r *os.File) (queued, capacity int) {
	t.Helper()
	const fGetPipeSz = 1032 // F_GETPIPE_SZ
	rc, err := r.SyscallConn()
	require.NoError(t, err)
	var errno syscall.Errno
	require.NoError(t, rc.Control(func(fd uintptr) {
		var n int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
			errno = e
			return
		}
		queued = int(n)
		c, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0)
		if e != 0 {
			errno = e
		}
		capacity = int(c)
	}))
	require.Zero(t, errno)
	return queued, capacity
}

// A stdout whose reader stopped reading must not hold a delivery past its context: SIGTERM's drain
// ends with the context, and a process whose stdout pipe is full must still stop.
func TestStdoutWriteBlockedOnAFullPipeEndsWithItsContext(t *testing.T) {
	r, w, err := os.Pipe() // os.Pipe's ends are non-blocking, as openStdout's reopened pipe
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	s := NewStdout(Deps{Stdout: w})
	_, capacity := pipeFill(t, r)
	big := testBatch("a", 2*capacity/200+10) // well over the pipe's capacity

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := make(chan error, 1)
	go func() { blocked <- s.Deliver(ctx, big) }()
	deadline := time.Now().Add(10 * time.Second)
	for q, c := pipeFill(t, r); q < c; q, c = pipeFill(t, r) {
		require.True(t, time.Now().Before(deadline), "the pipe never filled: %d of %d bytes", q, c)
		time.Sleep(5 * time.Millisecond)
	}

	// A second delivery waits for its turn, and gives up when its own context ends.
	ctx2, cancel2 := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { waiting <- s.Deliver(ctx2, testBatch("b", 1)) }()
	cancel2()
	assertEndsWithCanceled(t, waiting, r, "a delivery waiting behind a blocked write")

	cancel()
	assertEndsWithCanceled(t, blocked, r, "the blocked write")

	// Once the pipe is read again, the next delivery first finishes the line cut in the middle:
	// every line the reader sees is a whole record.
	lines := make(chan []string, 1)
	go func() { lines <- readAllLines(r) }()
	require.NoError(t, s.Deliver(context.Background(), testBatch("c", 3)))
	require.NoError(t, w.Close())
	got := <-lines
	require.GreaterOrEqual(t, len(got), 4)
	for i, line := range got {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "line %d is not a whole record: %.80q", i, line)
	}
	for i := range 3 {
		assert.Contains(t, got[len(got)-3+i], fmt.Sprintf(`"SequenceNumber":"c-%d"`, i))
	}
}

// assertEndsWithCanceled waits for a delivery's result; if it never comes (a write that ignores its
// context), the pipe is closed so that the blocked goroutine ends before the test fails.
func assertEndsWithCanceled(t *testing.T, result <-chan error, r *os.File, what string) {
	t.Helper()
	select {
	case err := <-result:
		require.ErrorIs(t, err, context.Canceled, what)
	case <-time.After(10 * time.Second):
		go func() { _, _ = io.Copy(io.Discard, r) }()
		t.Fatalf("%s did not end within 10s of its context", what)
	}
}

func readAllLines(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestUnfinishedLine(t *testing.T) {
	data := []byte("ab\ncd\nef")
	for _, tt := range []struct {
		n    int
		want string
	}{{0, ""}, {1, "b\n"}, {3, ""}, {4, "d\n"}, {7, "f"}, {8, ""}} {
		assert.Equal(t, tt.want, string(unfinishedLine(data, tt.n)), "unfinishedLine(%q, %d)", data, tt.n)
	}
}

// failingWriter writes at most n bytes of each call, then fails.
type failingWriter struct {
	out  []byte
	n    int
	fail bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if !w.fail {
		w.out = append(w.out, p...)
		return len(p), nil
	}
	k := min(w.n, len(p))
	w.out = append(w.out, p[:k]...)
	return k, errors.New("injected write failure")
}

// A write that fails before writing anything keeps the rest of a line an earlier write cut: the
// line is still finished first once writes succeed again.
func TestStreamKeepsTheCutLineAcrossAWriteThatWroteNothing(t *testing.T) {
	w := &failingWriter{fail: true, n: 5}
	s := newStream("test", w)
	ctx := context.Background()
	require.Error(t, s.write(ctx, []byte("first-line\nsecond\n")), "a write cut after 5 bytes")
	w.n = 0
	require.Error(t, s.write(ctx, []byte("third\n")), "a write that wrote nothing")
	w.fail = false
	require.NoError(t, s.write(ctx, []byte("fourth\n")))
	assert.Equal(t, "first-line\nfourth\n", string(w.out))
}
