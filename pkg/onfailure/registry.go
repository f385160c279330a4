package onfailure

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/plugin"
	"github.com/poller-dev/poller/pkg/sinks"
)

// Deps are what a destination may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; nil means no logging.
	Logger *zap.Logger
	// AWS is the SDK config for the sqs, sns and s3 destinations. A destination's own region and
	// endpoint_url keys override it.
	AWS aws.Config
}

// Registration describes one destination type (see plugin.Registration).
type Registration = plugin.Registration[Destination, Deps]

// Validator is a destination config that checks itself.
type Validator = plugin.Validator

var registry = plugin.NewRegistry[Destination, Deps](plugin.Names{Package: "onfailure", Kind: "on_failure", Noun: "destination"})

// Register adds a destination type. It panics on an empty or duplicate type or a missing function:
// programming errors, found at start-up.
func Register(r Registration) { registry.Register(r) }

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

func configAs[T any](cfg any) (*T, error) { return plugin.ConfigAs[T](cfg) }

func joinConfigErrors(errs []error) error { return sinks.JoinConfigErrors(errs) }
