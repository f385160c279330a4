package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole poller configuration, as read from one YAML file (Load, Parse) or built in code
// from Default(). Values are immutable once Parse returns or the config is handed to the service: the
// pipelines read them concurrently.
type Config struct {
	AWS       AWS        `yaml:"aws"`       // how to reach AWS
	Leases    Leases     `yaml:"leases"`    // the lease table shared by the replicas
	Server    Server     `yaml:"server"`    // the HTTP server for metrics and probes
	Log       Log        `yaml:"log"`       // the log level and format
	Memory    Memory     `yaml:"memory"`    // the memory budgets of the stream records in flight
	Pipelines []Pipeline `yaml:"pipelines"` // required, at least one
	// ShutdownTimeout bounds the graceful drain after SIGTERM (finish in-flight batches, checkpoint,
	// release leases); when it runs out, deliveries are cut short and poller exits 1. Default 25s,
	// 1s..1h. It must stay under the platform's grace period (Kubernetes
	// terminationGracePeriodSeconds, ECS stopTimeout) and above every sink timeout (Warnings).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// File is the path the config was read from (not a YAML key).
	File string `yaml:"-"`
}

// AWS says how to reach AWS.
type AWS struct {
	// Region; empty (the default) means the SDK's default chain (AWS_REGION, profile, ECS/EKS metadata).
	Region string `yaml:"region"`
	// EndpointURL, if set, is used for DynamoDB and DynamoDB Streams alike (DynamoDB Local). Default empty.
	EndpointURL string `yaml:"endpoint_url"`
}

// Leases configures the lease table that holds leases and checkpoints.
type Leases struct {
	Table       string `yaml:"table"`        // default poller-leases
	CreateTable bool   `yaml:"create_table"` // default true
	// WorkerID names this replica in the lease table. Default empty, which means hostname plus a random
	// suffix, chosen at start by the lease coordinator (not here, so Default() stays deterministic).
	WorkerID      string        `yaml:"worker_id"`
	LeaseDuration time.Duration `yaml:"lease_duration"` // default 10s; must exceed RenewInterval
	RenewInterval time.Duration `yaml:"renew_interval"` // default 2s; > 0
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

// Memory bounds the bytes that stream records hold from the GetRecords call that read them until
// they are done (delivered, filtered out or discarded), counted at their event JSON size.
type Memory struct {
	// MaxBufferedBytes is the budget of the whole process, shared by every shard of every
	// pipeline. Default 64 MiB; 1 MiB..1 TiB.
	MaxBufferedBytes ByteSize `yaml:"max_buffered_bytes"`
	// MaxBufferedBytesPerShard caps one shard. Default 16 MiB; 1 MiB..1 TiB.
	MaxBufferedBytesPerShard ByteSize `yaml:"max_buffered_bytes_per_shard"`
}

// ByteSize is a number of bytes, written as an integer or with a unit: KB, MB, GB (powers of
// 1000), KiB, MiB, GiB, TiB or Kubernetes' Ki, Mi, Gi, Ti (powers of 1024).
type ByteSize int64

var byteUnits = map[string]int64{
	"": 1, "B": 1, "KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
}

// UnmarshalText accepts an integer with an optional unit, e.g. 64MiB, 512Mi or 67108864.
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	i := strings.IndexFunc(text, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(text)
	}
	unit, ok := byteUnits[strings.TrimSpace(text[i:])]
	n, err := strconv.ParseInt(text[:i], 10, 64)
	if !ok || err != nil || n > math.MaxInt64/unit {
		return fmt.Errorf("must be a size like 64MiB, 512Mi or 67108864 (units B, KB, MB, GB, KiB, MiB, GiB, TiB, Ki, Mi, Gi, Ti), got %q", b)
	}
	*s = ByteSize(n * unit)
	return nil
}

// String shows the size in the largest binary unit that divides it.
func (s ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// Pipeline is one stream feeding one sink. A pipeline written in the file starts from
// DefaultPipeline().
type Pipeline struct {
	Name string `yaml:"name"` // required, unique, [A-Za-z0-9_.-]{1,100}
	// Enabled false keeps the pipeline configured but not started, as Lambda's Enabled does: its
	// leases and checkpoints stay in the lease table. Default (nil) true; see IsEnabled.
	Enabled      *bool         `yaml:"enabled"`
	Source       Source        `yaml:"source"`        // required: the stream
	PollInterval time.Duration `yaml:"poll_interval"` // default 250ms, 10ms..5m
	// IdlePollInterval is the cadence an idle shard backs off to, from PollInterval: after a few
	// empty polls in a row the wait doubles up to it, and the first page with records brings it back
	// to PollInterval. Default 0: every shard polls at PollInterval always, as Lambda does; else
	// PollInterval..10s.
	IdlePollInterval      time.Duration `yaml:"idle_poll_interval"`
	BatchSize             int           `yaml:"batch_size"`             // default 100, 1..10000
	MaxBatchingWindow     time.Duration `yaml:"max_batching_window"`    // default 0, 0..300s
	ParallelizationFactor int           `yaml:"parallelization_factor"` // default 1, 1..10
	// TumblingWindow is Lambda's TumblingWindowInSeconds: 0 (default) is off, else 1s..900s in whole
	// seconds. Each call then carries one window of one shard and the state its previous call
	// answered (see sinks.Window); the http and lambda sinks support it, with parallelization_factor 1.
	TumblingWindow          time.Duration `yaml:"tumbling_window"`
	MaxRetryAttempts        int           `yaml:"max_retry_attempts"`         // default -1 (until expiry), else 0..10000
	MaxRecordAge            RecordAge     `yaml:"max_record_age"`             // default -1 (no limit), else 60s..168h
	BisectBatchOnError      bool          `yaml:"bisect_batch_on_error"`      // default false
	ReportBatchItemFailures bool          `yaml:"report_batch_item_failures"` // default false
	Filters                 []Filter      `yaml:"filters"`                    // default none: every record passes
	// Sink is required. The plugin tag names the registry (Registries.Sinks) its type is looked up in.
	Sink Plugin `yaml:"sink" plugin:"sink"`
	// OnFailure is optional (nil when absent); its type is looked up in Registries.Destinations.
	OnFailure *Plugin `yaml:"on_failure" plugin:"destination"`
}

// Source names the stream: exactly one of Table and StreamARN.
type Source struct {
	Table            string           `yaml:"table"`             // a table name (3..255 of [A-Za-z0-9_.-]) or table ARN
	StreamARN        string           `yaml:"stream_arn"`        // arn:aws:dynamodb:<region>:<account>:table/<T>/stream/<label>
	StartingPosition StartingPosition `yaml:"starting_position"` // default TRIM_HORIZON
	// StartingPositionTimestamp is the time an AT_TIMESTAMP pipeline starts at (records created
	// before it are skipped); required with AT_TIMESTAMP, refused with any other position.
	StartingPositionTimestamp Timestamp `yaml:"starting_position_timestamp"`
}

// IsEnabled says whether the pipeline runs: enabled is unset or true.
func (p Pipeline) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Timestamp is an RFC 3339 time; the zero value means unset.
type Timestamp struct{ time.Time }

// UnmarshalText accepts an RFC 3339 time, like 2026-11-28T10:00:00Z.
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return fmt.Errorf("must be an RFC 3339 time like 2026-11-28T10:00:00Z, got %q", b)
	}
	t.Time = v
	return nil
}

// Filter is one Lambda filter pattern, written in YAML as a JSON string or as a mapping. Pattern holds
// it as compact JSON either way, already accepted by Registries.CheckFilter.
type Filter struct {
	Pattern string `yaml:"pattern"` // the pattern, as compact JSON
	// Line is where the pattern stands in the file, for error messages.
	Line int `yaml:"-"`
}

// Plugin is a sink or an on_failure destination: a type plus the type's own keys, which the type's
// registered config decodes and validates.
type Plugin struct {
	// Type is the `type` key: a registered sink type (Registries.Sinks) or destination type
	// (Registries.Destinations).
	Type string
	// Config is the decoded, validated config of the type: the value the registry's constructor
	// returned (a pointer to the type's config struct), or nil when the constructor returned nil.
	// In a config built in code it is such a pointer, or nil for the type's defaults.
	Config any
	// Node is the YAML mapping the plugin was written as, for error messages; nil in a config built
	// in code.
	Node *yaml.Node
}

// RecordAge is max_record_age: -1 means no limit.
type RecordAge time.Duration

// NoLimit is the RecordAge that disables the age check.
const NoLimit RecordAge = -1

// Limit returns the maximum record age, and false when there is none.
func (a RecordAge) Limit() (time.Duration, bool) {
	if a == NoLimit {
		return 0, false
	}
	return time.Duration(a), true
}

// String shows the age as a duration, or -1 for NoLimit.
func (a RecordAge) String() string {
	if a == NoLimit {
		return "-1"
	}
	return time.Duration(a).String()
}

// StartingPosition is where a shard without a checkpoint starts.
type StartingPosition string

// The starting positions.
const (
	TrimHorizon StartingPosition = "TRIM_HORIZON" // the oldest record the stream still holds
	Latest      StartingPosition = "LATEST"       // only records written after the shard is first read
	// AtTimestamp: the records created at or after starting_position_timestamp.
	AtTimestamp StartingPosition = "AT_TIMESTAMP"
)

// UnmarshalText accepts TRIM_HORIZON, LATEST or AT_TIMESTAMP, spelled exactly so (as in Lambda's API).
func (p *StartingPosition) UnmarshalText(b []byte) error {
	switch s := StartingPosition(b); s {
	case TrimHorizon, Latest, AtTimestamp:
		*p = s
		return nil
	}
	return fmt.Errorf("must be TRIM_HORIZON, LATEST or AT_TIMESTAMP, got %q", b)
}

// LogLevel is debug, info, warn or error.
type LogLevel string

// The log levels, from the most verbose.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

// UnmarshalText accepts debug, info, warn or error.
func (l *LogLevel) UnmarshalText(b []byte) error {
	switch s := LogLevel(b); s {
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
		*l = s
		return nil
	}
	return fmt.Errorf("must be one of debug, info, warn, error, got %q", b)
}

// LogFormat is json or console.
type LogFormat string

// The log formats.
const (
	FormatJSON    LogFormat = "json"    // one JSON object per line
	FormatConsole LogFormat = "console" // human-readable, with colored levels
)

// UnmarshalText accepts json or console.
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch s := LogFormat(b); s {
	case FormatJSON, FormatConsole:
		*f = s
		return nil
	}
	return fmt.Errorf("must be json or console, got %q", b)
}
