package sinks

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"
)

// Deps are what a sink may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; nil means no logging.
	Logger *zap.Logger
	// AWS is the SDK config, for AWS-backed sinks.
	AWS aws.Config
	// ReportBatchItemFailures: parse Lambda's partial batch response from the sink's answer
	// (the pipeline's report_batch_item_failures).
	ReportBatchItemFailures bool
	// Stdout is where the stdout sink writes; os.Stdout when nil.
	Stdout io.Writer
}

// Registration describes one sink type.
type Registration struct {
	// Type is the value of the sink's `type` key.
	Type string
	// NewConfig returns a pointer to the type's config struct, filled with defaults, for the config
	// loader to decode the sink's other keys into (yaml tags). If it has a `Validate() error` method,
	// the loader calls it after decoding; its errors are *ConfigError naming a key (several are
	// joined with errors.Join).
	NewConfig func() any
	// New builds the sink from a config that NewConfig made and the loader decoded.
	New func(cfg any, deps Deps) (Sink, error)
}

// Validator is a sink config that checks itself.
type Validator interface {
	Validate() error
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Registration{}
)

// Register adds a sink type. It panics on an empty or duplicate type, or a missing function: those
// are programming errors found at start-up, never config errors.
func Register(r Registration) {
	if r.Type == "" || r.NewConfig == nil || r.New == nil {
		panic(fmt.Sprintf("sinks: incomplete registration for type %q", r.Type))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[r.Type]; dup {
		panic(fmt.Sprintf("sinks: type %q registered twice", r.Type))
	}
	registry[r.Type] = r
}

// ConfigTypes returns, for each registered type, the function that makes its default config.
func ConfigTypes() map[string]func() any {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make(map[string]func() any, len(registry))
	for t, r := range registry {
		out[t] = r.NewConfig
	}
	return out
}

// Types returns the registered types, sorted.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}

// New builds a sink of type typ. cfg is the decoded config (nil means the type's defaults); it is
// validated again here, so a sink is never built from an invalid config.
func New(typ string, cfg any, deps Deps) (Sink, error) {
	registryMu.RLock()
	r, ok := registry[typ]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown sink type %q (known: %s)", typ, strings.Join(Types(), ", "))
	}
	if cfg == nil {
		cfg = r.NewConfig()
	} else if want := r.NewConfig(); reflect.TypeOf(cfg) != reflect.TypeOf(want) {
		return nil, fmt.Errorf("%s sink: config is %T, want %T", typ, cfg, want)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s sink: %w", typ, err)
		}
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	s, err := r.New(cfg, deps)
	if err != nil {
		return nil, fmt.Errorf("%s sink: %w", typ, err)
	}
	return s, nil
}

// configAs returns cfg as *T, or an error saying which config type was expected.
func configAs[T any](cfg any) (*T, error) {
	c, ok := cfg.(*T)
	if !ok || c == nil {
		return nil, fmt.Errorf("config is %T, want %T", cfg, c)
	}
	return c, nil
}

// joinConfigErrors returns nil, the one error, or all of them joined.
func joinConfigErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}
