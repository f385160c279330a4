package pipeline

import (
	"testing"

	"github.com/poller-dev/poller/internal/testenv"
)

// TestMain stops the shared DynamoDB Local, then checks that no test left a goroutine behind.
func TestMain(m *testing.M) { testenv.VerifyMain(m) }
