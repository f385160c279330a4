package sinks

import (
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/poller-dev/poller/pkg/plugin"
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

// Registration describes one sink type (see plugin.Registration).
type Registration = plugin.Registration[Sink, Deps]

// Validator is a sink config that checks itself.
type Validator = plugin.Validator

var registry = plugin.NewRegistry[Sink, Deps](plugin.Names{Package: "sinks", Kind: "sink", Noun: "sink"})

// Register adds a sink type. It panics on an empty or duplicate type, or a missing function: those
// are programming errors found at start-up, never config errors.
func Register(r Registration) { registry.Register(r) }

// ConfigTypes returns, for each registered type, the function that makes its default config.
func ConfigTypes() map[string]func() any { return registry.ConfigTypes() }

// Types returns the registered types, sorted.
func Types() []string { return registry.Types() }

// New builds a sink of type typ. cfg is the decoded config (nil means the type's defaults); it is
// validated again here, so a sink is never built from an invalid config.
func New(typ string, cfg any, deps Deps) (Sink, error) {
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	return registry.New(typ, cfg, deps)
}

func configAs[T any](cfg any) (*T, error) { return plugin.ConfigAs[T](cfg) }

// JoinConfigErrors returns nil, the one error, or all of them joined: a plugin config's Validate
// reports every wrong key at once.
func JoinConfigErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}
