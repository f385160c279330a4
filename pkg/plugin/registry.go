// Package plugin is the typed name -> factory registry behind the pipeline's two kinds of plugin:
// sinks (pkg/sinks), which receive the batches a pipeline delivers, and on_failure destinations
// (pkg/onfailure), which receive reports of the batches it gives up on.
//
// Each kind has one Registry, filled at start-up (by the built-in types' init functions and by a
// user's module, before the configuration is loaded). The config loader (pkg/config) asks a
// registry for each type's default config, decodes the plugin's YAML keys into it and validates it
// (reporting a *ConfigError at its key's line); the service then asks the registry to build the
// plugin from that config.
package plugin

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Validator is a plugin config that checks itself. The config loader calls Validate after decoding
// a plugin's keys, and Registry.New calls it again before building the plugin. Its errors should be
// *ConfigError, several joined with JoinConfigErrors, so that each is reported at its key's line.
type Validator interface {
	// Validate returns nil, or every wrong key's error.
	Validate() error
}

// Names say how a registry's messages name its plugins.
type Names struct {
	Package string // in panics: "sinks"
	Kind    string // in "unknown <kind> type": "sink", "on_failure"
	Noun    string // in "<type> <noun>: ...": "sink", "destination"
}

// Registry holds the registered types of one kind of plugin: T is what the registry builds (a
// sink, a destination) and D what a plugin may need besides its config. It is safe for concurrent
// use. Types are added with Register.
type Registry[T, D any] struct {
	names Names
	mu    sync.RWMutex
	regs  map[string]registration[T, D]
}

// registration is one type, its config and constructor seen through any: Register checks the
// config's type once, so that no plugin has to.
type registration[T, D any] struct {
	newConfig func() any
	build     func(cfg any, deps D) (T, error)
}

// NewRegistry returns an empty registry.
func NewRegistry[T, D any](names Names) *Registry[T, D] {
	return &Registry[T, D]{names: names, regs: map[string]registration[T, D]{}}
}

// Register adds type typ (the value of the plugin's `type` key) to r. defaults returns the type's
// config filled with its default values, for the config loader to decode the plugin's other keys
// into (yaml tags); nil means the zero C. If *C has a `Validate() error` method (Validator), it is
// called after decoding. build makes the plugin from a config decoded and validated so.
//
// Register panics on an empty or duplicate type, or a nil build: those are programming errors found
// at start-up, never config errors.
func Register[C, T, D any](r *Registry[T, D], typ string, defaults func() *C, build func(cfg *C, deps D) (T, error)) {
	if typ == "" || build == nil {
		panic(fmt.Sprintf("%s: incomplete registration for type %q", r.names.Package, typ))
	}
	if defaults == nil {
		defaults = func() *C { return new(C) }
	}
	reg := registration[T, D]{
		newConfig: func() any { return defaults() },
		build: func(cfg any, deps D) (T, error) {
			c, ok := cfg.(*C)
			if !ok || c == nil {
				var zero T
				return zero, fmt.Errorf("config is %T, want %T", cfg, c)
			}
			return build(c, deps)
		},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.regs[typ]; dup {
		panic(fmt.Sprintf("%s: type %q registered twice", r.names.Package, typ))
	}
	r.regs[typ] = reg
}

// ConfigTypes returns, for each registered type, the function that makes its default config: what
// the config loader decodes a plugin's keys into (pkg/config's PluginTypes).
func (r *Registry[T, D]) ConfigTypes() map[string]func() any {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]func() any, len(r.regs))
	for t, reg := range r.regs {
		out[t] = reg.newConfig
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
		cfg = reg.newConfig()
	} else if want := reg.newConfig(); reflect.TypeOf(cfg) != reflect.TypeOf(want) {
		return zero, fmt.Errorf("%s %s: config is %T, want %T", typ, r.names.Noun, cfg, want)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return zero, fmt.Errorf("%s %s: %w", typ, r.names.Noun, err)
		}
	}
	p, err := reg.build(cfg, deps)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", typ, r.names.Noun, err)
	}
	return p, nil
}
