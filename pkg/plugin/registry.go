// Package plugin is the name -> factory registry that sinks and on_failure destinations share: a
// type registers a config constructor (which the config loader decodes into and validates) and a
// constructor of the plugin itself.
package plugin

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Registration describes one plugin type, producing a T from its config and dependencies D.
type Registration[T, D any] struct {
	// Type is the value of the plugin's `type` key.
	Type string
	// NewConfig returns a pointer to the type's config struct, filled with defaults, for the config
	// loader to decode the plugin's other keys into (yaml tags). If it has a `Validate() error`
	// method, the loader calls it after decoding; its errors are *sinks.ConfigError naming a key
	// (several are joined with errors.Join).
	NewConfig func() any
	// New builds the plugin from a config that NewConfig made and the loader decoded.
	New func(cfg any, deps D) (T, error)
}

// Validator is a plugin config that checks itself.
type Validator interface {
	Validate() error
}

// Names say how messages name a registry's plugins.
type Names struct {
	Package string // in panics: "sinks"
	Kind    string // in "unknown <kind> type": "sink", "on_failure"
	Noun    string // in "<type> <noun>: ...": "sink", "destination"
}

// Registry holds the registered types of one kind of plugin. It is safe for concurrent use.
type Registry[T, D any] struct {
	names Names
	mu    sync.RWMutex
	regs  map[string]Registration[T, D]
}

// NewRegistry returns an empty registry.
func NewRegistry[T, D any](names Names) *Registry[T, D] {
	return &Registry[T, D]{names: names, regs: map[string]Registration[T, D]{}}
}

// Register adds a type. It panics on an empty or duplicate type, or a missing function: those are
// programming errors found at start-up, never config errors.
func (r *Registry[T, D]) Register(reg Registration[T, D]) {
	if reg.Type == "" || reg.NewConfig == nil || reg.New == nil {
		panic(fmt.Sprintf("%s: incomplete registration for type %q", r.names.Package, reg.Type))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.regs[reg.Type]; dup {
		panic(fmt.Sprintf("%s: type %q registered twice", r.names.Package, reg.Type))
	}
	r.regs[reg.Type] = reg
}

// ConfigTypes returns, for each registered type, the function that makes its default config.
func (r *Registry[T, D]) ConfigTypes() map[string]func() any {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]func() any, len(r.regs))
	for t, reg := range r.regs {
		out[t] = reg.NewConfig
	}
	return out
}

// Types returns the registered types, sorted.
func (r *Registry[T, D]) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.regs))
}

// New builds a plugin of type typ. cfg is the decoded config (nil means the type's defaults); it is
// validated again here, so a plugin is never built from an invalid config.
func (r *Registry[T, D]) New(typ string, cfg any, deps D) (T, error) {
	var zero T
	r.mu.RLock()
	reg, ok := r.regs[typ]
	r.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("unknown %s type %q (known: %s)", r.names.Kind, typ, strings.Join(r.Types(), ", "))
	}
	if cfg == nil {
		cfg = reg.NewConfig()
	} else if want := reg.NewConfig(); reflect.TypeOf(cfg) != reflect.TypeOf(want) {
		return zero, fmt.Errorf("%s %s: config is %T, want %T", typ, r.names.Noun, cfg, want)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return zero, fmt.Errorf("%s %s: %w", typ, r.names.Noun, err)
		}
	}
	p, err := reg.New(cfg, deps)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", typ, r.names.Noun, err)
	}
	return p, nil
}

// ConfigAs returns cfg as *C, or an error saying which config type was expected.
func ConfigAs[C any](cfg any) (*C, error) {
	c, ok := cfg.(*C)
	if !ok || c == nil {
		return nil, fmt.Errorf("config is %T, want %T", cfg, c)
	}
	return c, nil
}
