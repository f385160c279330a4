package config_test

import (
	"strings"
	"testing"

	"github.com/poller-dev/poller/pkg/config"
)

func TestValidateAConfigBuiltInCode(t *testing.T) {
	valid := func() config.Config {
		c := config.Default()
		p := config.DefaultPipeline()
		p.Name, p.Source.Table = "orders", "Orders"
		p.Sink = config.Plugin{Type: "http", Config: &httpConfig{URL: "http://127.0.0.1:8080/", Timeout: 5e9}}
		c.Pipelines = []config.Pipeline{p}
		return c
	}
	tests := []struct {
		name    string
		change  func(c *config.Config)
		wantErr []string // each a line of the error; none: valid
	}{
		{name: "defaults with a name, a source and a sink are valid", change: func(*config.Config) {}},
		{name: "a sink with a nil config takes its type's defaults", change: func(c *config.Config) {
			c.Pipelines[0].Sink = config.Plugin{Type: "stdout"}
		}},
		{name: "an out-of-range value names its key path", change: func(c *config.Config) { c.Pipelines[0].BatchSize = 0 },
			wantErr: []string{"pipelines[0].batch_size: must be 1..10000, got 0"}},
		{name: "every problem is reported at once", change: func(c *config.Config) {
			c.Leases.RenewInterval = 0
			c.Pipelines[0].Source.Table = ""
		}, wantErr: []string{"leases.renew_interval: must be greater than 0", "pipelines[0].source: is required"}},
		{name: "a missing sink is an error", change: func(c *config.Config) { c.Pipelines[0].Sink = config.Plugin{} },
			wantErr: []string{"pipelines[0].sink: is required (known sink types: file, http, stdout)"}},
		{name: "an unregistered sink type is an error", change: func(c *config.Config) { c.Pipelines[0].Sink.Type = "kafka" },
			wantErr: []string{`pipelines[0].sink.type: unknown sink type "kafka" (known: file, http, stdout)`}},
		{name: "a sink config of another type is an error", change: func(c *config.Config) { c.Pipelines[0].Sink.Config = &fileConfig{Path: "x"} },
			wantErr: []string{`pipelines[0].sink: the config of sink type "http" is *config_test.fileConfig, want *config_test.httpConfig`}},
		{name: "what the sink's Validate rejects names the key", change: func(c *config.Config) {
			c.Pipelines[0].Sink.Config = &httpConfig{URL: "ftp://x", Timeout: 5e9}
		}, wantErr: []string{`pipelines[0].sink.url: must be an absolute http or https URL, got "ftp://x"`}},
		{name: "what the destination's Validate rejects names the key", change: func(c *config.Config) {
			c.Pipelines[0].OnFailure = &config.Plugin{Type: "file", Config: &fileConfig{}}
		}, wantErr: []string{"pipelines[0].on_failure.path: is required"}},
		{name: "a filter pattern the compiler rejects is an error", change: func(c *config.Config) {
			c.Pipelines[0].Filters = []config.Filter{{Pattern: `{"eventName": "INSERT"}`}}
		}, wantErr: []string{"pipelines[0].filters[0].pattern: eventName: a filter value must be an array or an object"}},
		{name: "two pipelines of one name are an error", change: func(c *config.Config) {
			c.Pipelines = append(c.Pipelines, c.Pipelines[0])
		}, wantErr: []string{`pipelines[1].name: duplicate pipeline name "orders" (also pipelines[0])`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := config.Validate(&c, testRegistries())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			errs := config.Errors(err)
			if len(errs) != len(tt.wantErr) {
				t.Fatalf("Validate() = %d errors %v, want %d", len(errs), err, len(tt.wantErr))
			}
			for i, want := range tt.wantErr {
				if got := errs[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("error %d = %q, want it to start with %q", i, got, want)
				}
			}
		})
	}
}
