package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/config"
)

// A value that came from ${VAR} is never printed by a config error (a token put in the wrong key
// would end up in a terminal or a CI log): the error names the variable instead.
func TestConfigErrorsNameTheVariableNeverItsValue(t *testing.T) {
	const secret = "tok_SECRET_8c1f0e2d"
	t.Setenv("POLLER_TEST_TOKEN", secret)
	t.Setenv("POLLER_TEST_ZERO", "0")
	t.Setenv("POLLER_TEST_HOSTNAME", "SECRET-host.internal")
	const head = "pipelines:\n  - name: p\n    source:\n      table: GameScores\n"
	const stdoutSink = "    sink:\n      type: stdout\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"a token in an integer key",
			head + stdoutSink + "    batch_size: ${POLLER_TEST_TOKEN}\n",
			"x.yaml:7: pipelines[0].batch_size: must be an integer, got the value of ${POLLER_TEST_TOKEN}"},
		{"a token in a duration key",
			head + stdoutSink + "    poll_interval: ${POLLER_TEST_TOKEN}\n",
			"x.yaml:7: pipelines[0].poll_interval: must be a duration like 250ms or 5s, got the value of ${POLLER_TEST_TOKEN}"},
		{"a token in an enum key",
			"log:\n  level: ${POLLER_TEST_TOKEN}\n" + head + stdoutSink,
			"x.yaml:2: log.level: must be one of debug, info, warn, error, got the value of ${POLLER_TEST_TOKEN}"},
		{"a token in a key checked after decoding",
			"aws:\n  region: ${POLLER_TEST_TOKEN}\n" + head + stdoutSink,
			"x.yaml:2: aws.region: must be an AWS region like us-east-1, got the value of ${POLLER_TEST_TOKEN}"},
		{"a token inside a longer value of a sink's key",
			head + "    sink:\n      type: http\n      url: ftp://${POLLER_TEST_HOSTNAME}/x\n",
			`x.yaml:7: pipelines[0].sink.url: must be an absolute http or https URL, got "ftp://${POLLER_TEST_HOSTNAME}/x" (expanded)`},
		{"a token through an alias",
			"x-anchor: &tok ${POLLER_TEST_TOKEN}\n" + head + stdoutSink + "    batch_size: *tok\n",
			"pipelines[0].batch_size: must be an integer, got the value of ${POLLER_TEST_TOKEN}"},
		{"a short value is named where the message shows it, and the rest of the message stays",
			head + stdoutSink + "    batch_size: ${POLLER_TEST_ZERO}\n",
			"x.yaml:7: pipelines[0].batch_size: must be 1..10000, got the value of ${POLLER_TEST_ZERO}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml), "x.yaml", testRegistries())
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "SECRET", "the variables' values hold SECRET, their names do not")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
