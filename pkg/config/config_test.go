package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poller-dev/poller/pkg/config"
)

// minimal is the smallest valid config: one pipeline, everything else default.
const minimal = `pipelines:
  - name: p
    source:
      table: GameScores
    sink:
      type: stdout
`

func TestLoadGoodConfigDecodesEveryKey(t *testing.T) {
	t.Setenv("POLLER_TEST_SINK_URL", "http://sink.test:8080")
	t.Setenv("POLLER_TEST_TOKEN", "s3cret")
	t.Setenv("POLLER_TEST_BATCH", "42")

	got, err := config.Load("testdata/good.yaml", testRegistries())
	require.NoError(t, err)

	// Plugin nodes are for error messages; check where they point, then leave them out of the comparison.
	require.Len(t, got.Pipelines, 2)
	require.NotNil(t, got.Pipelines[0].Sink.Node)
	assert.Equal(t, 40, got.Pipelines[0].Sink.Node.Line, "sink node line")
	require.NotNil(t, got.Pipelines[0].OnFailure)
	assert.Equal(t, 47, got.Pipelines[0].OnFailure.Node.Line, "on_failure node line")
	got.Pipelines[0].Sink.Node, got.Pipelines[0].OnFailure.Node, got.Pipelines[1].Sink.Node = nil, nil, nil

	want := &config.Config{
		AWS: config.AWS{Region: "eu-west-1", EndpointURL: "http://127.0.0.1:8000"},
		Leases: config.Leases{
			Table:         "my-leases",
			CreateTable:   false,
			WorkerID:      "worker-a",
			LeaseDuration: 30 * time.Second,
			RenewInterval: 5 * time.Second,
		},
		Server: config.Server{Listen: "127.0.0.1:9000"},
		Log:    config.Log{Level: config.LevelDebug, Format: config.FormatConsole},
		Memory: config.Memory{MaxBufferedBytes: 512 << 20, MaxBufferedBytesPerShard: 32 << 20},
		Pipelines: []config.Pipeline{
			{
				Name:                    "congrats",
				Source:                  config.Source{Table: "GameScores", StartingPosition: config.Latest},
				PollInterval:            time.Second,
				IdlePollInterval:        5 * time.Second,
				BatchSize:               500,
				MaxBatchingWindow:       2 * time.Second,
				ParallelizationFactor:   4,
				MaxRetryAttempts:        3,
				MaxRecordAge:            config.RecordAge(time.Hour),
				BisectBatchOnError:      true,
				ReportBatchItemFailures: true,
				Filters: []config.Filter{
					{Pattern: `{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"TopScore":{"N":[{"numeric":[">",0]}]}}}}`, Line: 31},
					{Pattern: `{"eventName":["INSERT"],"dynamodb":{"Keys":{"Id":{"N":[{"numeric":[">=",10]}]}}}}`, Line: 33},
				},
				Sink: config.Plugin{Type: "http", Config: &httpConfig{
					URL:     "http://sink.test:8080/events",
					Timeout: 5 * time.Second,
					Headers: map[string]string{"Authorization": "Bearer s3cret", "X-Price": "$5"},
				}},
				OnFailure: &config.Plugin{Type: "file", Config: &fileConfig{Path: "/var/lib/poller/failed.jsonl"}},
			},
			{
				Name: "audit.v2",
				Source: config.Source{
					StreamARN:        "arn:aws:dynamodb:ddblocal:000000000000:table/Audit/stream/2024-01-01T00:00:00.000",
					StartingPosition: config.TrimHorizon,
				},
				PollInterval:          250 * time.Millisecond,
				BatchSize:             42,
				ParallelizationFactor: 1,
				MaxRetryAttempts:      -1,
				MaxRecordAge:          config.NoLimit,
				Sink:                  config.Plugin{Type: "stdout", Config: &stdoutConfig{}},
			},
		},
		ShutdownTimeout: 40 * time.Second,
		File:            "testdata/good.yaml",
	}
	assert.Equal(t, want, got)
}

func TestDefaultHoldsTheContractDefaults(t *testing.T) {
	want := config.Config{
		Leases: config.Leases{
			Table:         "poller-leases",
			CreateTable:   true,
			LeaseDuration: 10 * time.Second,
			RenewInterval: 2 * time.Second,
		},
		Server:          config.Server{Listen: ":9464"},
		Log:             config.Log{Level: config.LevelInfo, Format: config.FormatJSON},
		ShutdownTimeout: 25 * time.Second,
		Memory:          config.Memory{MaxBufferedBytes: 64 << 20, MaxBufferedBytesPerShard: 16 << 20},
	}
	assert.Equal(t, want, config.Default())

	wantPipeline := config.Pipeline{
		Source:                config.Source{StartingPosition: config.TrimHorizon},
		PollInterval:          250 * time.Millisecond,
		BatchSize:             100,
		MaxBatchingWindow:     0,
		ParallelizationFactor: 1,
		MaxRetryAttempts:      -1,
		MaxRecordAge:          config.NoLimit,
	}
	assert.Equal(t, wantPipeline, config.DefaultPipeline())

	// A file that sets only what is required gets exactly these defaults.
	got, err := config.Parse([]byte(minimal), "minimal.yaml", testRegistries())
	require.NoError(t, err)
	wantCfg := config.Default()
	wantCfg.File = "minimal.yaml"
	p := config.DefaultPipeline()
	p.Name, p.Source.Table = "p", "GameScores"
	p.Sink = config.Plugin{Type: "stdout", Config: &stdoutConfig{}, Node: got.Pipelines[0].Sink.Node}
	wantCfg.Pipelines = []config.Pipeline{p}
	assert.Equal(t, &wantCfg, got)
}

// badConfigs is one fixture per rule; each must produce exactly this one error.
var badConfigs = []struct {
	file    string
	wantErr string
}{
	{"unknown_key_top", "unknown_key_top.bad.yaml:3: metrics: unknown key (valid keys: aws, leases, log, memory, pipelines, server, shutdown_timeout)"},
	{"unknown_key_nested", "unknown_key_nested.bad.yaml:5: pipelines[0].source.tabel: unknown key (valid keys: starting_position, starting_position_timestamp, stream_arn, table)"},
	{"unknown_key_sink", "unknown_key_sink.bad.yaml:8: pipelines[0].sink.uri: unknown key (valid keys: headers, timeout, url)"},
	{"unknown_key_stdout", "unknown_key_stdout.bad.yaml:7: pipelines[0].sink.path: unknown key (no keys are allowed here)"},
	{"unknown_key_on_failure", "unknown_key_on_failure.bad.yaml:10: pipelines[0].on_failure.mode: unknown key (valid keys: path)"},
	{"unknown_key_filter", "unknown_key_filter.bad.yaml:7: pipelines[0].filters[0].patern: unknown key (valid keys: pattern)"},
	{"bad_type_int", `bad_type_int.bad.yaml:5: pipelines[0].batch_size: must be an integer, got "ten"`},
	{"bad_type_float", "bad_type_float.bad.yaml:5: pipelines[0].parallelization_factor: must be an integer, got 1.5"},
	{"bad_type_bool", `bad_type_bool.bad.yaml:5: pipelines[0].bisect_batch_on_error: must be a boolean (true or false), got "yes"`},
	{"bad_type_mapping", `bad_type_mapping.bad.yaml:1: leases: must be a mapping, got "poller-leases"`},
	{"bad_type_list", "bad_type_list.bad.yaml:2: pipelines: must be a list, got a mapping"},
	{"bad_type_in_sink", "bad_type_in_sink.bad.yaml:8: pipelines[0].sink.headers: must be a mapping, got a list"},
	{"not_a_mapping", "not_a_mapping.bad.yaml:1: the config must be a mapping of aws, leases, server, log and pipelines, got a list"},
	{"batch_size_zero", "batch_size_zero.bad.yaml:5: pipelines[0].batch_size: must be 1..10000, got 0"},
	{"memory_too_small", "memory_too_small.bad.yaml:2: memory.max_buffered_bytes_per_shard: must be 1MiB..1TiB, got 64KiB"},
	{"memory_bad_unit", `memory_bad_unit.bad.yaml:8: memory.max_buffered_bytes: must be a size like 64MiB, 512Mi or 67108864 (units B, KB, MB, GB, KiB, MiB, GiB, TiB, Ki, Mi, Gi, Ti), got "64 megabytes"`},
	{"batch_size_too_big", "batch_size_too_big.bad.yaml:5: pipelines[0].batch_size: must be 1..10000, got 10001"},
	{"max_batching_window_range", "max_batching_window_range.bad.yaml:5: pipelines[0].max_batching_window: must be 0..300s, got 5m1s"},
	{"tumbling_window_range", "tumbling_window_range.bad.yaml:5: pipelines[0].tumbling_window: must be 0 (off) or whole seconds 1s..900s, got 15m1s"},
	{"tumbling_window_fraction", "tumbling_window_fraction.bad.yaml:5: pipelines[0].tumbling_window: must be 0 (off) or whole seconds 1s..900s, got 1.5s"},
	{"tumbling_window_parallel", "tumbling_window_parallel.bad.yaml:6: pipelines[0].parallelization_factor: must be 1 with tumbling_window (1m0s), as Lambda requires, got 2"},
	{"tumbling_window_sink", "tumbling_window_sink.bad.yaml:5: pipelines[0].tumbling_window: needs a sink that answers the window's state (http, lambda), not stdout"},
	{"parallelization_factor_range", "parallelization_factor_range.bad.yaml:5: pipelines[0].parallelization_factor: must be 1..10, got 11"},
	{"max_retry_attempts_range", "max_retry_attempts_range.bad.yaml:5: pipelines[0].max_retry_attempts: must be -1 (until the record expires) or 0..10000, got -2"},
	{"max_retry_attempts_too_big", "max_retry_attempts_too_big.bad.yaml:5: pipelines[0].max_retry_attempts: must be -1 (until the record expires) or 0..10000, got 10001"},
	{"max_record_age_too_short", "max_record_age_too_short.bad.yaml:5: pipelines[0].max_record_age: must be -1 (no limit) or a duration 60s..168h, got 30s"},
	{"max_record_age_too_long", "max_record_age_too_long.bad.yaml:5: pipelines[0].max_record_age: must be -1 (no limit) or a duration 60s..168h, got 169h0m0s"},
	{"max_record_age_negative", `max_record_age_negative.bad.yaml:5: pipelines[0].max_record_age: must be -1 (no limit) or a duration 60s..168h, got "-1ns"`},
	{"max_record_age_int", "max_record_age_int.bad.yaml:5: pipelines[0].max_record_age: must be -1 (no limit) or a duration 60s..168h, got 3600"},
	{"poll_interval_too_short", "poll_interval_too_short.bad.yaml:5: pipelines[0].poll_interval: must be 10ms..5m, got 1ms"},
	{"poll_interval_too_long", "poll_interval_too_long.bad.yaml:5: pipelines[0].poll_interval: must be 10ms..5m, got 6m0s"},
	{"idle_poll_interval_range", "idle_poll_interval_range.bad.yaml:5: pipelines[0].idle_poll_interval: must be 0 (off) or poll_interval (250ms)..10s, got 30s"},
	{"idle_poll_interval_below_poll", "idle_poll_interval_below_poll.bad.yaml:6: pipelines[0].idle_poll_interval: must be 0 (off) or poll_interval (500ms)..10s, got 100ms"},
	{"lease_duration_not_above_renew", "lease_duration_not_above_renew.bad.yaml:2: leases.lease_duration: must be greater than renew_interval (2s), got 2s"},
	{"shutdown_timeout_too_short", "shutdown_timeout_too_short.bad.yaml:1: shutdown_timeout: must be 1s..1h, got 500ms"},
	{"shutdown_timeout_too_long", "shutdown_timeout_too_long.bad.yaml:1: shutdown_timeout: must be 1s..1h, got 2h0m0s"},
	{"renew_interval_zero", "renew_interval_zero.bad.yaml:2: leases.renew_interval: must be greater than 0, got 0s"},
	{"bad_duration_int", "bad_duration_int.bad.yaml:5: pipelines[0].poll_interval: must be a duration with a unit, like 250ms or 5s, got 5"},
	{"bad_duration_unit", `bad_duration_unit.bad.yaml:5: pipelines[0].poll_interval: must be a duration like 250ms or 5s, got "5 parsecs"`},
	{"bad_duration_in_sink", "bad_duration_in_sink.bad.yaml:8: pipelines[0].sink.timeout: must be a duration with a unit, like 250ms or 5s, got 30"},
	{"missing_pipelines", "missing_pipelines.bad.yaml:1: pipelines: at least one pipeline is required"},
	{"empty_pipelines", "empty_pipelines.bad.yaml:1: pipelines: at least one pipeline is required"},
	{"missing_name", "missing_name.bad.yaml:2: pipelines[0].name: is required"},
	{"missing_source", "missing_source.bad.yaml:2: pipelines[0].source: is required: set exactly one of table and stream_arn"},
	{"missing_sink", "missing_sink.bad.yaml:2: pipelines[0].sink: is required (known sink types: file, http, stdout)"},
	{"null_sink", "null_sink.bad.yaml:5: pipelines[0].sink: is required (known sink types: file, http, stdout)"},
	{"missing_sink_type", "missing_sink_type.bad.yaml:5: pipelines[0].sink.type: is required (known sink types: file, http, stdout)"},
	{"both_table_and_stream_arn", "both_table_and_stream_arn.bad.yaml:3: pipelines[0].source: set exactly one of table and stream_arn, not both"},
	{"bad_stream_arn", `bad_stream_arn.bad.yaml:4: pipelines[0].source.stream_arn: must be a stream ARN like arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2024-01-01T00:00:00.000, got "GameScores/stream/latest"`},
	{"bad_table_name", `bad_table_name.bad.yaml:4: pipelines[0].source.table: must be a DynamoDB table name (3..255 of A-Z a-z 0-9 _ . -) or table ARN, got "Game Scores"`},
	{"bad_region", `bad_region.bad.yaml:2: aws.region: must be an AWS region like us-east-1, got "US East 1"`},
	{"bad_endpoint_url", `bad_endpoint_url.bad.yaml:2: aws.endpoint_url: must be an absolute http or https URL, got "localhost:8000"`},
	{"bad_listen", `bad_listen.bad.yaml:2: server.listen: must be host:port like :9464 (or empty to disable the server), got "localhost"`},
	{"unset_env", "unset_env.bad.yaml:7: pipelines[0].sink.url: environment variable POLLER_TEST_UNSET_VARIABLE is not set"},
	{"bad_env_syntax", `bad_env_syntax.bad.yaml:7: pipelines[0].sink.url: unterminated ${ in "${POLLER_TEST_SINK_URL/events" (write $$ for a literal $)`},
	{"bad_enum_starting_position", `bad_enum_starting_position.bad.yaml:5: pipelines[0].source.starting_position: must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got "AT_TIME"`},
	{"at_timestamp_missing", "at_timestamp_missing.bad.yaml:3: pipelines[0].source.starting_position_timestamp: is required with starting_position AT_TIMESTAMP (an RFC 3339 time like 2026-11-28T10:00:00Z)"},
	{"timestamp_without_at_timestamp", "timestamp_without_at_timestamp.bad.yaml:6: pipelines[0].source.starting_position_timestamp: is only for starting_position AT_TIMESTAMP, got starting_position LATEST"},
	{"bad_timestamp", `bad_timestamp.bad.yaml:6: pipelines[0].source.starting_position_timestamp: must be an RFC 3339 time like 2026-11-28T10:00:00Z, got "yesterday"`},
	{"bad_type_enabled", `bad_type_enabled.bad.yaml:3: pipelines[0].enabled: must be a boolean (true or false), got "no"`},
	{"bad_enum_log_level", `bad_enum_log_level.bad.yaml:2: log.level: must be one of debug, info, warn, error, got "verbose"`},
	{"bad_enum_log_format", `bad_enum_log_format.bad.yaml:2: log.format: must be json or console, got "text"`},
	{"duplicate_pipeline_name", `duplicate_pipeline_name.bad.yaml:7: pipelines[1].name: duplicate pipeline name "p" (also pipelines[0], line 2)`},
	{"bad_pipeline_name", `bad_pipeline_name.bad.yaml:2: pipelines[0].name: must be 1..100 of A-Z a-z 0-9 _ . - (it is part of lease keys), got "my pipeline"`},
	{"long_pipeline_name", `long_pipeline_name.bad.yaml:2: pipelines[0].name: must be 1..100 of A-Z a-z 0-9 _ . - (it is part of lease keys), got "` + strings.Repeat("a", 101) + `"`},
	{"bad_filter_pattern_json", "bad_filter_pattern_json.bad.yaml:6: pipelines[0].filters[0].pattern: is not valid JSON: unexpected end of JSON input"},
	{"bad_filter_pattern_rejected", "bad_filter_pattern_rejected.bad.yaml:7: pipelines[0].filters[1].pattern: eventName: a filter value must be an array or an object, got INSERT"},
	{"bad_filter_pattern_type", "bad_filter_pattern_type.bad.yaml:6: pipelines[0].filters[0].pattern: must be a JSON string or a mapping, got 42"},
	{"missing_filter_pattern", "missing_filter_pattern.bad.yaml:6: pipelines[0].filters[0].pattern: is required"},
	{"unknown_sink_type", `unknown_sink_type.bad.yaml:6: pipelines[0].sink.type: unknown sink type "htp" (known: file, http, stdout)`},
	{"unknown_destination_type", `unknown_destination_type.bad.yaml:8: pipelines[0].on_failure.type: unknown destination type "sqs" (known: file)`},
	{"sink_validate_error", `sink_validate_error.bad.yaml:7: pipelines[0].sink.url: must be an absolute http or https URL, got "ftp://127.0.0.1/events"`},
	{"sink_validate_nested_key", "sink_validate_nested_key.bad.yaml:9: pipelines[0].sink.headers.Content-Type: is set by the sink, not the config"},
	{"sink_validate_missing_key", "sink_validate_missing_key.bad.yaml:5: pipelines[0].sink.url: is required"},
	{"destination_validate_error", "destination_validate_error.bad.yaml:7: pipelines[0].on_failure.path: is required"},
	{"duplicate_key", "duplicate_key.bad.yaml:6: pipelines[0].batch_size: duplicate key (first at line 5)"},
	{"two_documents", "two_documents.bad.yaml:7: a config holds one YAML document, found another (---)"},
	{"yaml_syntax_error", "yaml_syntax_error.bad.yaml:3: invalid YAML: did not find expected ',' or '}'"},
	{"yaml_bad_indent", "yaml_bad_indent.bad.yaml:7: invalid YAML: did not find expected key"},
	{"yaml_unclosed_quote", "yaml_unclosed_quote.bad.yaml:2: invalid YAML: found unexpected end of stream"},
	{"yaml_tab_indent", "yaml_tab_indent.bad.yaml:2: invalid YAML: found character that cannot start any token"},
	{"alias_cycle", "alias_cycle.bad.yaml:8: pipelines[0].filters[0].pattern: alias *p refers to a value that contains it"},
}

func TestBadConfigsReportFileLinePathAndMessage(t *testing.T) {
	t.Setenv("POLLER_TEST_UNSET_VARIABLE", "")
	require.NoError(t, os.Unsetenv("POLLER_TEST_UNSET_VARIABLE"))

	for _, tc := range badConfigs {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file+".bad.yaml")
			cfg, err := config.Load(path, testRegistries())
			require.ErrorContains(t, err, "testdata/"+tc.wantErr)
			assert.Nil(t, cfg)
			errs := config.Errors(err)
			require.Len(t, errs, 1, "one rule broken, one error: %v", err)
			assert.Equal(t, "testdata/"+tc.wantErr, errs[0].Error())
		})
	}
}

func TestEveryBadFixtureIsInTheTable(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	require.NoError(t, err)
	inTable := map[string]bool{}
	for _, tc := range badConfigs {
		inTable[tc.file] = true
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		assert.True(t, inTable[name], "testdata/%s.bad.yaml has no row in badConfigs", name)
	}
}

func TestParseReportsEveryErrorInFileOrder(t *testing.T) {
	const file = `aws:
  region: us-east-1
  profile: dev
pipelines:
  - name: a
    source:
      table: GameScores
    batch_size: 0
    poll_interval: 5
    sink:
      type: htp
  - name: a
    source:
      table: GameScores
      stream_arn: arn:aws:dynamodb:us-east-1:123456789012:table/GameScores/stream/x
    sink:
      type: http
      url: ftp://x
      timeout: -1s
log:
  level: loud
`
	_, err := config.Parse([]byte(file), "poller.yaml", testRegistries())
	var got []string
	for _, e := range config.Errors(err) {
		got = append(got, e.Error())
	}
	want := []string{
		"poller.yaml:3: aws.profile: unknown key (valid keys: endpoint_url, region)",
		"poller.yaml:8: pipelines[0].batch_size: must be 1..10000, got 0",
		"poller.yaml:9: pipelines[0].poll_interval: must be a duration with a unit, like 250ms or 5s, got 5",
		`poller.yaml:11: pipelines[0].sink.type: unknown sink type "htp" (known: file, http, stdout)`,
		`poller.yaml:12: pipelines[1].name: duplicate pipeline name "a" (also pipelines[0], line 5)`,
		"poller.yaml:13: pipelines[1].source: set exactly one of table and stream_arn, not both",
		`poller.yaml:18: pipelines[1].sink.url: must be an absolute http or https URL, got "ftp://x"`,
		"poller.yaml:19: pipelines[1].sink.timeout: must be greater than 0, got -1s",
		`poller.yaml:21: log.level: must be one of debug, info, warn, error, got "loud"`,
	}
	assert.Equal(t, want, got)
	// The joined error prints them one per line too.
	assert.Equal(t, strings.Join(want, "\n"), err.Error())
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("POLLER_TEST_TABLE", "GameScores")
	t.Setenv("POLLER_TEST_NUMBER", "250")
	t.Setenv("POLLER_TEST_EMPTY", "")
	t.Setenv("POLLER_TEST_DOLLAR", "${POLLER_TEST_TABLE}")

	sinkURL := func(url string) string {
		return "pipelines:\n  - name: p\n    source:\n      table: T01\n    sink:\n      type: http\n      url: " + url + "\n"
	}
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c *config.Config)
		wantErr string
	}{
		{
			name: "a variable in a plain value is replaced",
			yaml: "leases:\n  table: ${POLLER_TEST_TABLE}-leases\n" + minimal,
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "GameScores-leases", c.Leases.Table)
			},
		},
		{
			name: "a number from the environment decodes into an integer key",
			yaml: minimal + "    batch_size: ${POLLER_TEST_NUMBER}\n",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, 250, c.Pipelines[0].BatchSize)
			},
		},
		{
			name:    "a quoted value stays a string even when the variable holds a number",
			yaml:    minimal + "    batch_size: \"${POLLER_TEST_NUMBER}\"\n",
			wantErr: `x.yaml:7: pipelines[0].batch_size: must be an integer, got the value of ${POLLER_TEST_NUMBER}`,
		},
		{
			name: "an empty variable gives an empty string, not the default",
			yaml: "server:\n  listen: ${POLLER_TEST_EMPTY}\n" + minimal,
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "", c.Server.Listen)
			},
		},
		{
			name: "$$ is a literal dollar and a lone $ stays as it is",
			yaml: sinkURL("http://x.test/$$${POLLER_TEST_NUMBER}/$HOME/$"),
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "http://x.test/$250/$HOME/$", c.Pipelines[0].Sink.Config.(*httpConfig).URL)
			},
		},
		{
			name: "an expanded value is not expanded again",
			yaml: sinkURL("http://x.test/${POLLER_TEST_DOLLAR}"),
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "http://x.test/${POLLER_TEST_TABLE}", c.Pipelines[0].Sink.Config.(*httpConfig).URL)
			},
		},
		{
			name: "keys are not expanded",
			yaml: sinkURL("http://x.test/") + "      headers:\n        ${POLLER_TEST_TABLE}: v\n",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, map[string]string{"${POLLER_TEST_TABLE}": "v"}, c.Pipelines[0].Sink.Config.(*httpConfig).Headers)
			},
		},
		{
			name:    "an invalid variable name is an error",
			yaml:    sinkURL("http://x.test/${POLLER-TABLE}"),
			wantErr: `x.yaml:7: pipelines[0].sink.url: invalid variable name "POLLER-TABLE" in ${...}`,
		},
		{
			name:    "an unset variable in a list item names the item",
			yaml:    minimal + "    filters:\n      - pattern: '${POLLER_TEST_UNSET_VARIABLE}'\n",
			wantErr: "x.yaml:8: pipelines[0].filters[0].pattern: environment variable POLLER_TEST_UNSET_VARIABLE is not set",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml), "x.yaml", testRegistries())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Len(t, config.Errors(err), 1, "errors: %v", err)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestAnchorsAliasesAndMergeKeys(t *testing.T) {
	const file = `x-defaults: &defaults
  batch_size: 10
  poll_interval: 1s
  sink: &sink
    type: http
    url: http://x.test/events
pipelines:
  - <<: *defaults
    name: a
    source: {table: TableA}
  - <<: *defaults
    name: b
    batch_size: 20
    source: {table: TableB}
    sink: *sink
`
	// x-defaults is not a key of the config: anchors have to live where the config allows them.
	_, err := config.Parse([]byte(file), "x.yaml", testRegistries())
	require.EqualError(t, err, "x.yaml:1: x-defaults: unknown key (valid keys: aws, leases, log, memory, pipelines, server, shutdown_timeout)")

	const good = `pipelines:
  - &first
    name: a
    batch_size: 10
    poll_interval: 1s
    source: {table: TableA}
    sink: &sink
      type: http
      url: http://x.test/events
  - <<: *first
    name: b
    batch_size: 20
    sink: *sink
`
	c, err := config.Parse([]byte(good), "x.yaml", testRegistries())
	require.NoError(t, err)
	require.Len(t, c.Pipelines, 2)
	b := c.Pipelines[1]
	assert.Equal(t, "b", b.Name)
	assert.Equal(t, 20, b.BatchSize, "a key written in the mapping wins over the merged one")
	assert.Equal(t, time.Second, b.PollInterval, "merged from the anchor")
	assert.Equal(t, "TableA", b.Source.Table, "merged from the anchor")
	assert.Equal(t, "http://x.test/events", b.Sink.Config.(*httpConfig).URL)
	assert.NotSame(t, c.Pipelines[0].Sink.Config, b.Sink.Config, "each use of an alias gets its own config")
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// "Billion laughs": ten levels of ten aliases each would be 10^10 nodes.
	var b strings.Builder
	b.WriteString(minimal + "    filters:\n      - pattern:\n          l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "          l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}

	start := time.Now()
	_, err := config.Parse([]byte(b.String()), "laughs.yaml", testRegistries())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second, "alias expansion must stop at the node budget")
	assert.ErrorContains(t, err, "document too large")
}

func TestErrorPrintsWhatItKnows(t *testing.T) {
	tests := []struct {
		name string
		err  config.Error
		want string
	}{
		{"a full error prints file, line, path and message", config.Error{File: "p.yaml", Line: 3, Path: "log.level", Msg: "bad"}, "p.yaml:3: log.level: bad"},
		{"an error without a line prints the file only", config.Error{File: "p.yaml", Path: "pipelines", Msg: "bad"}, "p.yaml: pipelines: bad"},
		{"an error without a path prints no path", config.Error{File: "p.yaml", Line: 1, Msg: "bad"}, "p.yaml:1: bad"},
		{"an error without a file prints the line", config.Error{Line: 2, Path: "aws", Msg: "bad"}, "line 2: aws: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
		})
	}
}

func TestLoadOfAMissingFileIsNotAConfigError(t *testing.T) {
	_, err := config.Load("testdata/does-not-exist.yaml", testRegistries())
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Empty(t, config.Errors(err))
}

func TestErrorsFindsWrappedConfigErrors(t *testing.T) {
	_, err := config.Parse([]byte("pipelines: []\n"), "x.yaml", testRegistries())
	wrapped := errors.Join(errors.New("other"), errors.Join(err))
	errs := config.Errors(wrapped)
	require.Len(t, errs, 1)
	assert.Equal(t, "pipelines", errs[0].Path)
}

func TestEmptyFileNeedsPipelines(t *testing.T) {
	_, err := config.Parse(nil, "empty.yaml", testRegistries())
	require.EqualError(t, err, "empty.yaml: pipelines: at least one pipeline is required")
}

func TestEnabledAndAtTimestampDecode(t *testing.T) {
	const file = `pipelines:
  - name: on
    source: {table: GameScores}
    sink: {type: stdout}
  - name: off
    enabled: false
    source:
      table: GameScores
      starting_position: AT_TIMESTAMP
      starting_position_timestamp: 2026-11-28T10:00:00+01:00
    sink: {type: stdout}
`
	c, err := config.Parse([]byte(file), "x.yaml", testRegistries())
	require.NoError(t, err)
	assert.True(t, c.Pipelines[0].IsEnabled(), "enabled defaults to true")
	assert.False(t, c.Pipelines[1].IsEnabled())
	src := c.Pipelines[1].Source
	assert.Equal(t, config.AtTimestamp, src.StartingPosition)
	assert.True(t, src.StartingPositionTimestamp.Equal(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)), "timestamp = %v", src.StartingPositionTimestamp)
}

func TestTumblingWindowIsAcceptedWithASinkThatAnswersState(t *testing.T) {
	for _, sink := range []string{"type: http\n      url: http://h.test/"} { // lambda is not in the test registries
		data := "pipelines:\n  - name: p\n    source:\n      table: Totals\n    tumbling_window: 900s\n    sink:\n      " + sink + "\n"
		c, err := config.Parse([]byte(data), "w.yaml", testRegistries())
		require.NoError(t, err, sink)
		assert.Equal(t, 900*time.Second, c.Pipelines[0].TumblingWindow, sink)
	}
	c, err := config.Parse([]byte("pipelines:\n  - name: p\n    source:\n      table: Totals\n    sink:\n      type: stdout\n"), "w.yaml", testRegistries())
	require.NoError(t, err)
	assert.Zero(t, c.Pipelines[0].TumblingWindow, "off by default")
}
