// Package config is poller's configuration: its Go types (Config, one Pipeline per stream) and the
// loader of the YAML file, which checks it strictly: every unknown key, wrong type, out-of-range
// value and missing required value is reported, all of them at once, each with its file, line and
// key path (see Error). README.md documents every key.
//
// It comes first in the data flow: pkg/cli loads the file (Load) against the sink and on_failure
// types registered in the process (service.Registries), and pkg/service turns the *Config into
// running pipelines. A sink's or destination's own keys are decoded into the config value its
// registration makes and checked by that value's Validate method, so a custom type's keys get the
// same file:line errors as a built-in one's. A Go program may also build a Config in code, from
// Default() and DefaultPipeline(), and check it with Validate by the same rules.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Registries are the plugin types a config may name, and the filter-pattern compiler.
type Registries struct {
	Sinks        PluginTypes // for pipelines[i].sink
	Destinations PluginTypes // for pipelines[i].on_failure
	// CheckFilter compiles a filter pattern (compact JSON); nil accepts any valid JSON.
	CheckFilter func(pattern []byte) error
}

// Default returns the config with every documented default filled in. It has no pipelines:
// each pipeline in a file starts from DefaultPipeline().
func Default() Config {
	return Config{
		Leases: Leases{
			Table:         "poller-leases",
			CreateTable:   true,
			LeaseDuration: 10 * time.Second,
			RenewInterval: 2 * time.Second,
		},
		Server:          Server{Listen: ":9464"},
		Log:             Log{Level: LevelInfo, Format: FormatJSON},
		ShutdownTimeout: DefaultShutdownTimeout,
		Memory:          Memory{MaxBufferedBytes: 64 << 20, MaxBufferedBytesPerShard: 16 << 20},
	}
}

// DefaultShutdownTimeout is shutdown_timeout's default: under Kubernetes' default
// terminationGracePeriodSeconds (30 s), with a few seconds left for the process to exit.
const DefaultShutdownTimeout = 25 * time.Second

// DefaultPipeline returns a pipeline with the documented defaults (Lambda's, but for a 250ms
// poll): it has no name, source or sink, which a config must give.
func DefaultPipeline() Pipeline {
	return Pipeline{
		Source:                Source{StartingPosition: TrimHorizon},
		PollInterval:          250 * time.Millisecond,
		BatchSize:             100,
		ParallelizationFactor: 1,
		MaxRetryAttempts:      -1,
		MaxRecordAge:          NoLimit,
	}
}

func (p *Pipeline) setDefaults() { *p = DefaultPipeline() }

// Load reads and parses the config file at path. See Parse.
func Load(path string, reg Registries) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, reg)
}

// Parse parses a config, naming it file in errors. It returns either a valid config or every problem
// found, joined: Errors(err) lists them as *Error in file order.
func Parse(data []byte, file string, reg Registries) (*Config, error) {
	d := newDecoder(file, reg)
	cfg := Default()
	cfg.File = file
	root, ok := d.parseYAML(data)
	if !ok {
		return nil, joinErrors(d.errs)
	}
	switch {
	case root == nil:
	case root.Kind != yaml.MappingNode:
		d.errorf(root.Line, "", "the config must be a mapping of aws, leases, server, log and pipelines, got %s", describe(root))
	default:
		d.lines[""] = root.Line
		d.expandEnv(root, "")
		d.decode(root, "", reflect.ValueOf(&cfg).Elem())
	}
	if !d.tooDeep {
		d.validate(&cfg)
	}
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, joinErrors(d.errs)
	}
	return &cfg, nil
}

// yamlPrefix is the "yaml: line N: " that starts a yaml.v3 syntax error's text. yaml.v3 has no typed
// syntax error, and its N is the 0-based line where the enclosing block starts for many errors (a
// misindented key deep in a pipeline is reported at "line 1"), so the prefix is cut off and the line
// is found by syntaxErrorLine instead.
var yamlPrefix = regexp.MustCompile(`^yaml: (?:line \d+: )?`)

// maxLinesToLocate bounds syntaxErrorLine, which parses once per line.
const maxLinesToLocate = 2000

// parseYAML parses the one document of the file. It returns the document's content node (nil for an
// empty file) and false when the YAML itself is broken.
func (d *decoder) parseYAML(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntaxError(err, data)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err, data)
		return nil, false
	default:
		d.errorf(next.Line, "", "a config holds one YAML document, found another (---)")
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

func (d *decoder) syntaxError(err error, data []byte) {
	msg := yamlPrefix.ReplaceAllString(err.Error(), "")
	d.errorf(syntaxErrorLine(data), "", "invalid YAML: %s", msg)
}

// syntaxErrorLine returns the line of the first syntax error in data: the line after the longest
// prefix of whole lines that still parses (a block-style document cut at a line end stays valid, so
// the first line that breaks it is the culprit; an unclosed bracket or quote is blamed on the line that
// opened it). It returns 0 for a document too long to search.
func syntaxErrorLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxLinesToLocate {
		return 0
	}
	end := len(data)
	for k := len(lines) - 1; k >= 1; k-- {
		end -= len(lines[k])
		if parses(data[:end]) {
			return k + 1
		}
	}
	return 1
}

// parses reports whether data is a well-formed YAML stream.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		switch err := dec.Decode(&n); {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		}
	}
}
