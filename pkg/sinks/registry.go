package sinks

import (
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/plugin"
)

// Deps are what a sink may need from the poller besides its own config.
type Deps struct {
	// Logger is scoped to the pipeline; the service always sets it.
	Logger *zap.Logger
	// AWS is the SDK config, for AWS-backed sinks.
	AWS aws.Config
	// ReportBatchItemFailures: parse Lambda's partial batch response from the sink's answer
	// (the pipeline's report_batch_item_failures).
	ReportBatchItemFailures bool
	// Stdout is where the stdout sink writes; os.Stdout when nil.
	Stdout io.Writer
}

// Validator is a sink config that checks itself (see plugin.Validator).
type Validator = plugin.Validator

// ConfigError is a config error about one key of a sink's config, reported by the config loader at
// that key's line (see plugin.ConfigError).
type ConfigError = plugin.ConfigError

// Registry holds the sink types: the built-in ones and those a user's module registered. The
// config loader reads each type's default config from it (ConfigTypes), and the service builds
// sinks with it (New; nil cfg means the type's defaults, and the config is validated again
// first, so no sink is built from an invalid config).
var Registry = plugin.NewRegistry[Sink, Deps](plugin.Names{Package: "sinks", Kind: "sink", Noun: "sink"})

// Register adds a sink type: the value of a pipeline's `sink.type` key. defaults returns its config
// with the default values set (nil means the zero C), which the config loader decodes the sink's
// other keys into (yaml tags, unknown keys refused) and validates, if *C is a Validator, reporting
// each *ConfigError at its key's line. build makes the sink from that config.
//
// Call it from an init function or from main before the configuration is loaded. It panics on an
// empty or duplicate type, or a nil build: programming errors found at start-up, never config
// errors.
func Register[C any](typ string, defaults func() *C, build func(cfg *C, deps Deps) (Sink, error)) {
	plugin.Register(Registry, typ, defaults, build)
}
