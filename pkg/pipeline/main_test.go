package pipeline

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/poller-dev/poller/internal/testenv"
)

// TestMain stops the shared DynamoDB Local, then checks that no test left a goroutine behind.
func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
