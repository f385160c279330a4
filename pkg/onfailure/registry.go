package onfailure

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"
)

// Deps are what a destination may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; nil means no logging.
	Logger *zap.Logger
	// AWS is the SDK config for the sqs, sns and s3 destinations. A destination's own region and
	// endpoint_url keys override it.
	AWS aws.Config
}

// Registration describes one destination type.
type Registration struct {
	// Type is the value of the on_failure `type` key.
	Type string
	// NewConfig returns a pointer to the type's config struct with its defaults, for the config
	// loader to decode the other keys into; a `Validate() error` method reports *sinks.ConfigError
	// for a key (several joined with errors.Join).
	NewConfig func() any
	// New builds the destination from a config NewConfig made.
	New func(cfg any, deps Deps) (Destination, error)
}

// Validator is a destination config that checks itself.
type Validator interface {
	Validate() error
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Registration{}
)

// Register adds a destination type. It panics on an empty or duplicate type or a missing function:
// programming errors, found at start-up.
func Register(r Registration) {
	if r.Type == "" || r.NewConfig == nil || r.New == nil {
		panic(fmt.Sprintf("onfailure: incomplete registration for type %q", r.Type))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[r.Type]; dup {
		panic(fmt.Sprintf("onfailure: type %q registered twice", r.Type))
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

// New builds a destination of type typ from its decoded config (nil means the type's defaults),
// validating the config again first.
func New(typ string, cfg any, deps Deps) (Destination, error) {
	registryMu.RLock()
	r, ok := registry[typ]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown on_failure type %q (known: %s)", typ, strings.Join(Types(), ", "))
	}
	if cfg == nil {
		cfg = r.NewConfig()
	} else if want := r.NewConfig(); reflect.TypeOf(cfg) != reflect.TypeOf(want) {
		return nil, fmt.Errorf("%s destination: config is %T, want %T", typ, cfg, want)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s destination: %w", typ, err)
		}
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	d, err := r.New(cfg, deps)
	if err != nil {
		return nil, fmt.Errorf("%s destination: %w", typ, err)
	}
	return d, nil
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
