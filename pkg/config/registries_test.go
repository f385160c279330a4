package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/sinks"
)

// httpConfig is a fake sink config shaped like the real http sink's: defaults set by its constructor,
// and a Validate that names its keys with sinks.ConfigError.
type httpConfig struct {
	URL     string            `yaml:"url"`
	Timeout time.Duration     `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
}

func (c *httpConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, &sinks.ConfigError{Key: "url", Msg: "is required"})
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, &sinks.ConfigError{Key: "url", Msg: fmt.Sprintf("must be an absolute http or https URL, got %q", c.URL)})
	}
	if c.Timeout <= 0 {
		errs = append(errs, &sinks.ConfigError{Key: "timeout", Msg: fmt.Sprintf("must be greater than 0, got %s", c.Timeout)})
	}
	if _, ok := c.Headers["Content-Type"]; ok {
		errs = append(errs, &sinks.ConfigError{Key: "headers.Content-Type", Msg: "is set by the sink, not the config"})
	}
	return errors.Join(errs...)
}

// fileConfig wraps its ConfigError, as a sink may: the loader must still find the key.
type fileConfig struct {
	Path string `yaml:"path"`
}

func (c *fileConfig) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("file destination: %w", &sinks.ConfigError{Key: "path", Msg: "is required"})
	}
	return nil
}

type stdoutConfig struct{}

func testRegistries() config.Registries {
	return config.Registries{
		Sinks: config.PluginTypes{
			"http":   func() any { return &httpConfig{Timeout: 30 * time.Second} },
			"file":   func() any { return &fileConfig{} },
			"stdout": func() any { return &stdoutConfig{} },
		},
		Destinations: config.PluginTypes{
			"file": func() any { return &fileConfig{} },
		},
		CheckFilter: checkFilter,
	}
}

// checkFilter is a small stand-in for Lambda's pattern rules: an object whose leaves are arrays.
func checkFilter(pattern []byte) error {
	var v any
	if err := json.Unmarshal(pattern, &v); err != nil {
		return fmt.Errorf("pattern is not JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("pattern must be a JSON object")
	}
	return checkFilterObject(obj, "")
}

func checkFilterObject(obj map[string]any, prefix string) error {
	for k, v := range obj {
		switch v := v.(type) {
		case []any:
		case map[string]any:
			if err := checkFilterObject(v, prefix+k+"."); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s%s: a filter value must be an array or an object, got %v", prefix, k, v)
		}
	}
	return nil
}

// CallTimeout makes the fake http sink's timeout visible to config.Warnings, as the real one's is.
func (c *httpConfig) CallTimeout() time.Duration { return c.Timeout }
