// Package testenv starts the real components that integration tests talk to: DynamoDB Local (AWS's
// own emulator, with Streams) and moto (SQS, SNS, S3). Nothing here is a mock: tests reach these
// servers over HTTP with the real AWS SDK.
//
// A missing component skips the test with a loud message on a developer machine, and fails it under
// CI (CI=true), so that an integration test can never pass by not running.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/goleak"
)

// Region is the region every test client uses.
const Region = "us-east-1"

// dynamoDBLocalVersion must match scripts/dynamodb-local.sh.
const dynamoDBLocalVersion = "2.9.30"

// AWSConfig returns an SDK config with static test credentials, for endpoints on this machine.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// missing skips the test, or fails it under CI, because a component is not installed.
func missing(tb testing.TB, what, hint string) {
	tb.Helper()
	msg := fmt.Sprintf("%s is not available (%s)", what, hint)
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s; under CI integration tests must not skip", msg)
	}
	tb.Skipf("SKIPPING INTEGRATION TEST: %s", msg)
}

// EmulatorDir is the folder that holds DynamoDBLocal.jar: $POLLER_DYNAMODB_LOCAL, else the cache that
// scripts/dynamodb-local.sh fills.
func EmulatorDir() string {
	if d := os.Getenv("POLLER_DYNAMODB_LOCAL"); d != "" {
		return d
	}
	cache := os.Getenv("POLLER_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "poller")
	}
	return filepath.Join(cache, "dynamodb-local-"+dynamoDBLocalVersion, "package", "emulator")
}

// Server is a component process started for tests.
type Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Stop kills the process and waits for it.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

var (
	sharedMu   sync.Mutex
	sharedDDB  *Server
	sharedErr  error
	sharedMoto *Server
)

// DynamoDBLocal returns the endpoint of a DynamoDB Local instance shared by the tests of this test
// binary, starting it on first use. Call Main from TestMain to stop it at the end.
//
// DynamoDB Local slows down badly for a table created after many stream records of other tables
// (each write queries the shard's records on one SQLite thread: 23-40 writes/s): tests that write thousands of records use
// NewDynamoDBLocal instead.
func DynamoDBLocal(tb testing.TB) string {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedDDB == nil && sharedErr == nil {
		sharedDDB, sharedErr = startDynamoDBLocal(nil)
	}
	if sharedErr != nil {
		missing(tb, "DynamoDB Local", sharedErr.Error())
	}
	return sharedDDB.Endpoint
}

// NewDynamoDBLocal starts a fresh in-memory DynamoDB Local for this test alone and stops it at cleanup.
// wrapper, if given, is a command that runs java (e.g. faketime -m -f "+0 x200").
func NewDynamoDBLocal(tb testing.TB, wrapper ...string) string {
	tb.Helper()
	s, err := startDynamoDBLocal(wrapper)
	if err != nil {
		missing(tb, "DynamoDB Local", err.Error())
	}
	tb.Cleanup(s.Stop)
	return s.Endpoint
}

// Moto returns the endpoint of a moto server (SQS, SNS, S3, ...) shared by this test binary.
func Moto(tb testing.TB) string {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedMoto == nil {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("pick a port for moto: %v", err)
		}
		python := os.Getenv("POLLER_PYTHON")
		if python == "" {
			python = "python3"
		}
		if err := exec.Command(python, "-c", "import moto.server").Run(); err != nil {
			missing(tb, "moto", "python3 -m moto.server: "+err.Error()+"; pip install 'moto[server]'")
		}
		s, err := start(exec.Command(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port)), port, 60*time.Second)
		if err != nil {
			tb.Fatalf("start moto: %v", err)
		}
		sharedMoto = s
	}
	return sharedMoto.Endpoint
}

// Main runs the tests and stops the shared servers afterwards. Use it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sharedDDB.Stop()
	sharedMoto.Stop()
	sharedDDB, sharedMoto, sharedErr = nil, nil, nil
	return code
}

// VerifyMain is TestMain for a package whose tests start goroutines: it runs the tests, stops the
// shared servers, checks that no test left a goroutine behind (goleak), and exits.
func VerifyMain(m *testing.M) {
	code := Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startDynamoDBLocal(wrapper []string) (*Server, error) {
	dir := EmulatorDir()
	if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err != nil {
		return nil, fmt.Errorf("no DynamoDBLocal.jar in %s; run scripts/dynamodb-local.sh fetch", dir)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("java not on PATH: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	java := []string{"java", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
		"-inMemory", "-sharedDb", "-port", strconv.Itoa(port)}
	env, direct, err := faketimeEnv(wrapper)
	if err != nil {
		return nil, err
	}
	args := java
	if !direct {
		args = append(append([]string{}, wrapper...), java...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return start(cmd, port, 90*time.Second)
}

// faketimeEnv turns a `faketime [-m] -f SPEC` wrapper into the environment that faketime itself
// would set (LD_PRELOAD of libfaketime, FAKETIME=SPEC), so that java is this process's direct child:
// the faketime binary forks java, and killing faketime (at Stop, or by Pdeathsig when the test binary
// dies) would leave java running. Other wrappers are run as given (direct is false).
func faketimeEnv(wrapper []string) (env []string, direct bool, err error) {
	if len(wrapper) == 0 {
		return nil, true, nil
	}
	if wrapper[0] != "faketime" {
		return nil, false, nil
	}
	lib, spec := "libfaketime.so.1", ""
	for i := 1; i < len(wrapper); i++ {
		switch wrapper[i] {
		case "-m":
			lib = "libfaketimeMT.so.1"
		case "-f":
			if i+1 < len(wrapper) {
				spec = wrapper[i+1]
				i++
			}
		default:
			return nil, false, fmt.Errorf("faketime wrapper: unsupported argument %q (only -m and -f SPEC)", wrapper[i])
		}
	}
	if spec == "" {
		return nil, false, fmt.Errorf("faketime wrapper: -f SPEC is required")
	}
	paths, _ := filepath.Glob("/usr/lib/*/faketime/" + lib)
	if len(paths) == 0 {
		return nil, false, fmt.Errorf("libfaketime (%s) is not installed: apt-get install faketime", lib)
	}
	return []string{"LD_PRELOAD=" + paths[0], "FAKETIME=" + spec}, true, nil
}

// start runs cmd and waits, with a deadline, until its port accepts connections. The process is
// killed if the test binary dies (Pdeathsig), so no emulator outlives a crashed test.
func start(cmd *exec.Cmd, port int, timeout time.Duration) (*Server, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.CreateTemp("", fmt.Sprintf("poller-testenv-%d-*.log", port))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("%s exited before listening: %s", cmd.Path, out)
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("%s did not listen on port %d within %s (log %s)", cmd.Path, port, timeout, logf.Name())
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
