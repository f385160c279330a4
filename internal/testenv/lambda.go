package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RIEModule is the AWS Lambda Runtime Interface Emulator that the lambda sink's tests run, installed
// with `go install` from the Go module proxy when it is not on PATH (or in GOBIN / GOPATH/bin).
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// LambdaFunctionName is the only function name the emulator serves: it answers
// POST /2015-03-31/functions/function/invocations alone (404 for any other name).
const LambdaFunctionName = "function"

var (
	rieOnce sync.Once
	riePath string
	rieErr  error
)

// lambdaRIE returns the path of aws-lambda-rie, installing it on first use when it is missing.
func lambdaRIE() (string, error) {
	rieOnce.Do(func() {
		riePath, rieErr = findRIE()
		if rieErr == nil {
			return
		}
		install := exec.Command("go", "install", RIEModule)
		if out, err := install.CombinedOutput(); err != nil {
			rieErr = fmt.Errorf("go install %s: %w: %s", RIEModule, err, out)
			return
		}
		riePath, rieErr = findRIE()
	})
	return riePath, rieErr
}

// findRIE looks for aws-lambda-rie on PATH, then where `go install` puts it.
func findRIE() (string, error) {
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	dirs := []string{goEnv("GOBIN")}
	if gopath := goEnv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "aws-lambda-rie")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("aws-lambda-rie is not installed")
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// BuildGo builds the main package pkg (an import path) into a temporary folder of the test and
// returns the binary's path.
func BuildGo(tb testing.TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// LambdaFunction starts the Runtime Interface Emulator with handler (a binary built with
// aws-lambda-go's lambda.Start, e.g. by BuildGo) as the function, with env added to the function's
// environment (the emulator passes its own on), and returns its Invoke endpoint for the SDK's
// BaseEndpoint (the sink's endpoint_url); the function's name there is LambdaFunctionName. It is
// stopped at cleanup. A missing emulator that cannot be installed skips the test, or fails it
// under CI.
//
// How the emulator behaves (read from its source and checked by hand; the tests rely on it):
//   - It runs the handler as its child process, started at the first invocation, and serves the
//     Lambda Runtime API to it on --runtime-api-address.
//   - It runs ONE invocation at a time, and a second one arriving while one runs crashes it (a nil
//     dereference in rapidcore's Server.Invoke), so tests invoke it from one shard with
//     parallelization_factor 1, and never abandon a call that is still running: the sink's
//     timeout must be longer than the function's.
//   - AWS_LAMBDA_FUNCTION_TIMEOUT (whole seconds, default 300) is the function's timeout. A handler
//     that runs longer is killed (SIGKILL) and started again for the next invocation; the answer is
//     200, without X-Amz-Function-Error, with the text "Task timed out after N.00 seconds".
//   - A handler's error is answered 200 with Lambda's error object ({"errorMessage","errorType"})
//     and without X-Amz-Function-Error.
func LambdaFunction(tb testing.TB, handler string, timeout time.Duration, env ...string) string {
	tb.Helper()
	rie, err := lambdaRIE()
	if err != nil {
		missing(tb, "the AWS Lambda Runtime Interface Emulator", err.Error())
	}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("pick a port for aws-lambda-rie: %v", err)
	}
	apiPort, err := freePort()
	if err != nil {
		tb.Fatalf("pick a port for the runtime API: %v", err)
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort), handler)
	cmd.Dir = filepath.Dir(handler)
	secs := max(1, int(timeout/time.Second))
	cmd.Env = append(os.Environ(), append([]string{"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(secs)}, env...)...)
	s, err := start(cmd, port, 30*time.Second)
	if err != nil {
		tb.Fatalf("start aws-lambda-rie: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s.Endpoint
}
