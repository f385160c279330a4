package onfailure

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/plugin"
)

// Deps are what a destination may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; never nil when New builds the destination (a no-op logger
	// if the caller gave none).
	Logger *zap.Logger
	// AWS is the SDK config for the sqs, sns and s3 destinations. A destination's own region and
	// endpoint_url keys override it.
	AWS aws.Config
}

// Validator is a destination config that checks itself (see plugin.Validator).
type Validator = plugin.Validator

var registry = plugin.NewRegistry[Destination, Deps](plugin.Names{Package: "onfailure", Kind: "on_failure", Noun: "destination"})

// Register adds a destination type: the value of a pipeline's `on_failure.type` key. defaults
// returns its config with the default values set (nil means the zero C), which the config loader
// decodes the destination's other keys into and validates, if *C is a Validator, reporting each
// *plugin.ConfigError at its key's line. build makes the destination from that config.
//
// Call it from an init function or from main before the configuration is loaded. It panics on an
// empty or duplicate type, or a nil build: programming errors found at start-up.
func Register[C any](typ string, defaults func() *C, build func(cfg *C, deps Deps) (Destination, error)) {
	plugin.Register(registry, typ, defaults, build)
}

// ConfigTypes returns, for each registered type, the function that makes its default config.
func ConfigTypes() map[string]func() any { return registry.ConfigTypes() }

// Types returns the registered types, sorted.
func Types() []string { return registry.Types() }

// New builds a destination of type typ from its decoded config (nil means the type's defaults),
// validating the config again first.
func New(typ string, cfg any, deps Deps) (Destination, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	return registry.New(typ, cfg, deps)
}
