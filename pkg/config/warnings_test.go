package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/config"
)

func TestWarningsNameEveryCallTimeoutNotBelowShutdownTimeout(t *testing.T) {
	const pipeline = `pipelines:
  - name: p
    source:
      table: GameScores
    sink:
      type: http
      url: http://h/x
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{name: "a timeout below shutdown_timeout is fine",
			yaml: "shutdown_timeout: 25s\n" + pipeline + "      timeout: 24s\n"},
		{name: "a timeout equal to shutdown_timeout is named at its line",
			yaml: "shutdown_timeout: 25s\n" + pipeline + "      timeout: 25s\n",
			want: []string{"x.yaml:9: pipelines[0].sink.timeout: warning: 25s is not below shutdown_timeout (25s)"}},
		{name: "a default timeout above a short shutdown_timeout is named at the sink",
			yaml: "shutdown_timeout: 10s\n" + pipeline,
			want: []string{"x.yaml:7: pipelines[0].sink.timeout: warning: 30s is not below shutdown_timeout (10s)"}},
		{name: "a sink without a timeout is never named",
			yaml: "shutdown_timeout: 1s\npipelines:\n  - name: p\n    source:\n      table: GameScores\n    sink:\n      type: stdout\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), "x.yaml", testRegistries())
			require.NoError(t, err)
			got := config.Warnings(cfg)
			require.Len(t, got, len(tt.want), "Warnings() = %v", got)
			for i, w := range tt.want {
				assert.Contains(t, got[i].Error(), w)
			}
		})
	}
}
