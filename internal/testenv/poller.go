package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// MainWithPoller is TestMain for packages that run the poller binary: it builds cmd/poller (go build
// with flags, e.g. -race) into a temporary folder, stores its path in *bin, runs the tests as Main
// does, removes the folder and returns the exit code.
func MainWithPoller(m *testing.M, bin *string, flags ...string) int {
	dir, err := os.MkdirTemp("", "poller-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "poller")
	args := append(append([]string{"build"}, flags...), "-o", *bin, "github.com/poller-dev/poller/cmd/poller")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build poller:", err)
		return 1
	}
	return Main(m)
}

// StartPoller writes cfg to a file in the test's temporary folder and starts bin on it with test
// credentials, killed with the test process; the caller waits for it.
func StartPoller(tb testing.TB, bin, cfg string) *exec.Cmd {
	tb.Helper()
	cmd := PollerCommand(tb, bin, cfg)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd
}

// PollerCommand is StartPoller's command, not started yet, for a caller that reads the poller's
// standard output or log through a pipe: cfg written to a file of the test's, test credentials, the
// log on the test's stderr, and the process killed if the test process dies.
func PollerCommand(tb testing.TB, bin, cfg string) *exec.Cmd {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "poller.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
