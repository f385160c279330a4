package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		file     string
		wantCode int
		wantErr  string // a line of stderr: file:line: key path: what
	}{
		{file: "good.yaml", wantCode: 0},
		{file: "unknown-key.bad.yaml", wantCode: 2, wantErr: "testdata/unknown-key.bad.yaml:8: pipelines[0].batch_sizee: unknown key"},
		{file: "bad-type.bad.yaml", wantCode: 2, wantErr: "testdata/bad-type.bad.yaml:8: pipelines[0].batch_size:"},
		{file: "out-of-range.bad.yaml", wantCode: 2, wantErr: "testdata/out-of-range.bad.yaml:8: pipelines[0].batch_size: must be 1..10000, got 0"},
		{file: "bad-duration.bad.yaml", wantCode: 2, wantErr: "testdata/bad-duration.bad.yaml:8: pipelines[0].poll_interval:"},
		{file: "missing-source.bad.yaml", wantCode: 2, wantErr: "testdata/missing-source.bad.yaml:2: pipelines[0].source:"},
		{file: "both-sources.bad.yaml", wantCode: 2, wantErr: "testdata/both-sources.bad.yaml:3: pipelines[0].source: set exactly one of table and stream_arn"},
		{file: "unset-var.bad.yaml", wantCode: 2, wantErr: "testdata/unset-var.bad.yaml:7: pipelines[0].sink.url: environment variable POLLER_TEST_SURELY_UNSET is not set"},
		{file: "bad-filter.bad.yaml", wantCode: 2, wantErr: "testdata/bad-filter.bad.yaml:6: pipelines[0].filters[0].pattern:"},
		{file: "kinesis-both-streams.bad.yaml", wantCode: 2, wantErr: "testdata/kinesis-both-streams.bad.yaml:8: pipelines[0].sink.stream_arn: set stream_name or stream_arn, not both"},
		{file: "sqs-no-queue.bad.yaml", wantCode: 2, wantErr: "testdata/sqs-no-queue.bad.yaml:5: pipelines[0].sink.queue_url: required"},
		{file: "sqs-no-queue.bad.yaml", wantCode: 2, wantErr: "testdata/sqs-no-queue.bad.yaml:7: pipelines[0].sink.endpoint_url: must be an absolute http or https URL"},
		{file: "no-such-file.yaml", wantCode: 2, wantErr: "no-such-file.yaml"},
		{file: "timeout-warning.yaml", wantCode: 0, wantErr: "testdata/timeout-warning.yaml:9: pipelines[0].sink.timeout: warning: 15s is not below shutdown_timeout (10s)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(context.Background(), []string{"validate", "--config", "testdata/" + tt.file}, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("poller validate %s = exit %d, want %d; stderr:\n%s", tt.file, code, tt.wantCode, stderr.String())
			}
			if tt.wantErr != "" && !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want a line containing %q", stderr.String(), tt.wantErr)
			}
			if tt.wantCode == 0 && !strings.Contains(stdout.String(), "valid") {
				t.Errorf("stdout = %q, want it to say the config is valid", stdout.String())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      string
		yaml     string // $POLLER_CONFIG_YAML
		wantCode int
		wantOut  string
	}{
		{name: "version prints the version", args: []string{"version"}, wantCode: 0, wantOut: "poller "},
		{name: "no command is bad usage", args: nil, wantCode: 2},
		{name: "an unknown command is bad usage", args: []string{"frobnicate"}, wantCode: 2},
		{name: "run without a config is bad usage", args: []string{"run"}, wantCode: 2},
		{name: "the config may come from POLLER_CONFIG", args: []string{"validate"}, env: "testdata/good.yaml", wantCode: 0, wantOut: "valid"},
		{name: "the config itself may come from POLLER_CONFIG_YAML", args: []string{"validate"}, yaml: goodYAML(t), wantCode: 0, wantOut: "$POLLER_CONFIG_YAML: valid"},
		{name: "a config file wins over POLLER_CONFIG_YAML", args: []string{"validate"}, env: "testdata/good.yaml", yaml: "not: [valid", wantCode: 0, wantOut: "testdata/good.yaml: valid"},
		{name: "an invalid POLLER_CONFIG_YAML is a bad config", args: []string{"validate"}, yaml: "pipelines: []\nbogus: 1\n", wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POLLER_CONFIG", tt.env)
			t.Setenv("POLLER_CONFIG_YAML", tt.yaml)
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Fatalf("Run(%q) = %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want %q in it", stdout.String(), tt.wantOut)
			}
		})
	}
}

// goodYAML is the content of testdata/good.yaml.
func goodYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
