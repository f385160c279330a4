package onfailure

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/plugin"
)

// Deps are what a destination may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; the service always sets it.
	Logger *zap.Logger
	// AWS is the SDK config for the sqs, sns and s3 destinations. A destination's own region and
	// endpoint_url keys override it.
	AWS aws.Config
}

// Registry holds the destination types: the built-in ones and those a user's module registered. The
// config loader reads each type's default config from it (ConfigTypes), and the service builds
// destinations with it (New; nil cfg means the type's defaults, and the config is validated again
// first, so no destination is built from an invalid config).
var Registry = plugin.NewRegistry[Destination, Deps](plugin.Names{Package: "onfailure", Kind: "on_failure", Noun: "destination"})

// Register adds a destination type, the value of a pipeline's `on_failure.type` key, the way
// sinks.Register adds a sink type (defaults, Validate, build and its panics are the same).
func Register[C any](typ string, defaults func() *C, build func(cfg *C, deps Deps) (Destination, error)) {
	plugin.Register(Registry, typ, defaults, build)
}
