package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole poller configuration, as read from one YAML file. Start from Default().
type Config struct {
	AWS       AWS        `yaml:"aws"`
	Leases    Leases     `yaml:"leases"`
	Server    Server     `yaml:"server"`
	Log       Log        `yaml:"log"`
	Pipelines []Pipeline `yaml:"pipelines"`

	// File is the path the config was read from (not a YAML key).
	File string `yaml:"-"`
}

// AWS says how to reach AWS.
type AWS struct {
	// Region; empty means the SDK's default chain (AWS_REGION, profile, ECS/EKS metadata).
	Region string `yaml:"region"`
	// EndpointURL, if set, is used for DynamoDB and DynamoDB Streams alike (DynamoDB Local).
	EndpointURL string `yaml:"endpoint_url"`
}

// Leases configures the lease table that holds leases and checkpoints.
type Leases struct {
	Table         string        `yaml:"table"`          // default poller-leases
	CreateTable   bool          `yaml:"create_table"`   // default true
	WorkerID      string        `yaml:"worker_id"`      // default hostname plus a random suffix
	LeaseDuration time.Duration `yaml:"lease_duration"` // default 10s
	RenewInterval time.Duration `yaml:"renew_interval"` // default 2s
}

// Server is the HTTP server for /metrics, /healthz and /readyz.
type Server struct {
	Listen string `yaml:"listen"` // default ":9464"; empty disables the server
}

// Log configures zap.
type Log struct {
	Level  LogLevel  `yaml:"level"`  // default info
	Format LogFormat `yaml:"format"` // default json
}

// Pipeline is one stream feeding one sink.
type Pipeline struct {
	Name                    string        `yaml:"name"`
	Source                  Source        `yaml:"source"`
	PollInterval            time.Duration `yaml:"poll_interval"`              // default 250ms
	BatchSize               int           `yaml:"batch_size"`                 // default 100, 1..10000
	MaxBatchingWindow       time.Duration `yaml:"max_batching_window"`        // default 0, 0..300s
	ParallelizationFactor   int           `yaml:"parallelization_factor"`     // default 1, 1..10
	MaxRetryAttempts        int           `yaml:"max_retry_attempts"`         // default -1 (until expiry), else 0..10000
	MaxRecordAge            RecordAge     `yaml:"max_record_age"`             // default -1 (no limit), else 60s..168h
	BisectBatchOnError      bool          `yaml:"bisect_batch_on_error"`      // default false
	ReportBatchItemFailures bool          `yaml:"report_batch_item_failures"` // default false
	Filters                 []Filter      `yaml:"filters"`
	Sink                    Plugin        `yaml:"sink"`
	OnFailure               *Plugin       `yaml:"on_failure"` // optional
}

// Source names the stream: exactly one of Table and StreamARN.
type Source struct {
	Table            string           `yaml:"table"`
	StreamARN        string           `yaml:"stream_arn"`
	StartingPosition StartingPosition `yaml:"starting_position"` // default TRIM_HORIZON
}

// Filter is one Lambda filter pattern, written in YAML as a JSON string or as a mapping. Pattern holds
// it as JSON either way.
type Filter struct {
	Pattern string `yaml:"pattern"`
	// Line is where the pattern stands in the file, for error messages.
	Line int `yaml:"-"`
}

// Plugin is a sink or an on_failure destination: a type plus the type's own keys, which the type's
// registered config decodes and validates.
type Plugin struct {
	Type string
	// Config is the decoded, validated config of the type (the registry's NewConfig value).
	Config any
	// Node is the YAML mapping the plugin was written as, for error messages.
	Node *yaml.Node
}

// RecordAge is max_record_age: -1 means no limit.
type RecordAge time.Duration

// NoLimit is the RecordAge that disables the age check.
const NoLimit RecordAge = -1

// StartingPosition is where a shard without a checkpoint starts.
type StartingPosition string

const (
	TrimHorizon StartingPosition = "TRIM_HORIZON"
	Latest      StartingPosition = "LATEST"
)

// LogLevel is debug, info, warn or error.
type LogLevel string

// LogFormat is json or console.
type LogFormat string
