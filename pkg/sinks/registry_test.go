package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestRegistry(t *testing.T) {
	t.Run("the built-in sinks are registered", func(t *testing.T) {
		types := Registry.ConfigTypes()
		for _, typ := range []string{"http", "file", "stdout"} {
			assert.Contains(t, types, typ)
		}
		assert.Equal(t, DefaultHTTPConfig(), types["http"](), "http NewConfig() gives the defaults")
	})
	t.Run("registering a type twice panics", func(t *testing.T) {
		// A name of its own per run: the registry is global and -count reruns the test.
		typ := fmt.Sprintf("test-dup-%d", time.Now().UnixNano())
		register := func() {
			Register(typ, nil, func(*StdoutConfig, Deps) (Sink, error) { return NewStdout(Deps{}), nil })
		}
		register()
		assert.PanicsWithValue(t, fmt.Sprintf(`sinks: type %q registered twice`, typ), register)
		assert.Panics(t, func() { Register[HTTPConfig]("http", nil, nil) }, "an incomplete registration panics too")
	})
	t.Run("an unknown type is an error that lists the known types", func(t *testing.T) {
		_, err := Registry.New("kafka", nil, Deps{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `unknown sink type "kafka"`)
		assert.Regexp(t, `known: .*file, .*http, .*lambda, .*stdout`, err.Error(), "the known types, sorted")
	})
	t.Run("New validates the config again and passes on the *ConfigError", func(t *testing.T) {
		_, err := Registry.New("http", &HTTPConfig{URL: "ftp://x", Timeout: time.Second}, Deps{})
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "New() error = %v, want a *ConfigError", err)
		assert.Equal(t, "url", ce.Key)
	})
	t.Run("New rejects a config of another type", func(t *testing.T) {
		_, err := Registry.New("file", &HTTPConfig{}, Deps{})
		require.ErrorContains(t, err, "want *sinks.FileConfig")
	})
	t.Run("New with a nil config uses the type's defaults", func(t *testing.T) {
		s, err := Registry.New("stdout", nil, Deps{Stdout: &strings.Builder{}})
		require.NoError(t, err)
		require.NoError(t, s.Close(context.Background()))
	})
}

// decode decodes a sink's YAML keys into its NewConfig value the way the config loader does.
func decode(t *testing.T, typ, doc string) (any, error) {
	t.Helper()
	cfg := Registry.ConfigTypes()[typ]()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, err
	}
	if v, ok := cfg.(Validator); ok {
		return cfg, v.Validate()
	}
	return cfg, nil
}

func TestConfigDecoding(t *testing.T) {
	t.Run("http keys decode, durations as Go strings, defaults kept", func(t *testing.T) {
		cfg, err := decode(t, "http", "url: https://example.com/x\nheaders:\n  Authorization: Bearer t\n")
		require.NoError(t, err)
		assert.Equal(t, &HTTPConfig{URL: "https://example.com/x", Timeout: 20 * time.Second,
			Headers: map[string]string{"Authorization": "Bearer t"}}, cfg)
		cfg, err = decode(t, "http", "url: http://h\ntimeout: 250ms\n")
		require.NoError(t, err)
		assert.Equal(t, 250*time.Millisecond, cfg.(*HTTPConfig).Timeout)
	})
	t.Run("file path decodes", func(t *testing.T) {
		cfg, err := decode(t, "file", "path: /tmp/x.jsonl\n")
		require.NoError(t, err)
		assert.Equal(t, &FileConfig{Path: "/tmp/x.jsonl"}, cfg)
	})
	t.Run("stdout has no keys, so any key is unknown", func(t *testing.T) {
		_, err := decode(t, "stdout", "path: x\n")
		require.ErrorContains(t, err, "field path not found")
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Validator
		wantKeys []string // keys of the *ConfigErrors, in order; none means valid
		wantMsg  string
	}{
		{"a plain http URL is valid", &HTTPConfig{URL: "http://127.0.0.1:8080/events", Timeout: time.Second}, nil, ""},
		{"an https URL with headers is valid", &HTTPConfig{URL: "https://h/x", Timeout: time.Second,
			Headers: map[string]string{"X-Token": "abc", "Host": "api.example"}}, nil, ""},
		{"a missing url is required", &HTTPConfig{Timeout: time.Second}, []string{"url"}, "url: required"},
		{"an ftp url is not http", &HTTPConfig{URL: "ftp://x", Timeout: time.Second}, []string{"url"},
			`url: must be an absolute http or https URL, got "ftp://x"`},
		{"a relative url is not absolute", &HTTPConfig{URL: "/events", Timeout: time.Second}, []string{"url"}, "absolute"},
		{"an unparsable url is named", &HTTPConfig{URL: "http://[::1", Timeout: time.Second}, []string{"url"}, "absolute"},
		{"a zero timeout must be positive", &HTTPConfig{URL: "http://h", Timeout: 0}, []string{"timeout"}, "timeout: must be positive, got 0s"},
		{"a header name with a space is invalid", &HTTPConfig{URL: "http://h", Timeout: time.Second,
			Headers: map[string]string{"X Token": "a"}}, []string{"headers.X Token"}, "not a valid header name"},
		{"content-type belongs to the sink", &HTTPConfig{URL: "http://h", Timeout: time.Second,
			Headers: map[string]string{"content-type": "text/plain"}}, []string{"headers.content-type"}, "is set by the sink"},
		{"a header value with a newline is rejected", &HTTPConfig{URL: "http://h", Timeout: time.Second,
			Headers: map[string]string{"X-A": "a\r\nX-B: b"}}, []string{"headers.X-A"}, "CR, LF"},
		{"every wrong key is reported, not just the first", &HTTPConfig{Timeout: -time.Second,
			Headers: map[string]string{"B(": "x", "A)": "y"}}, []string{"url", "timeout", "headers.A)", "headers.B("}, ""},
		{"a file path is required", &FileConfig{}, []string{"path"}, "path: required"},
		{"a file path is valid", &FileConfig{Path: "x.jsonl"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantKeys == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, e := range flatten(err) {
				var ce *ConfigError
				require.True(t, errors.As(e, &ce), "Validate() error %v is not a *ConfigError", e)
				got = append(got, ce.ConfigKey())
			}
			assert.Equal(t, tt.wantKeys, got, "Validate() error keys")
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

// flatten returns the errors joined in err, or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
