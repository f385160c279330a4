package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	// pipelineName is what a lease key can hold.
	pipelineName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	// tableName is DynamoDB's rule for table names.
	tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	tableARN  = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$`)
	// streamARN also accepts DynamoDB Local's arn:aws:dynamodb:ddblocal:000000000000:table/T/stream/L.
	streamARN = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}/stream/[^\s/]+$`)
	region    = regexp.MustCompile(`^[a-z0-9-]+$`)
)

// Documented ranges (Lambda's, where Lambda has the knob).
const (
	minBatchSize, maxBatchSize       = 1, 10000
	maxBatchingWindow                = 300 * time.Second
	maxTumblingWindow                = 900 * time.Second
	minParallelization, maxParallel  = 1, 10
	maxRetryAttempts                 = 10000
	minRecordAge, maxRecordAge       = 60 * time.Second, 168 * time.Hour
	minPollInterval, maxPollInterval = 10 * time.Millisecond, 5 * time.Minute
	maxIdlePollInterval              = 10 * time.Second
	minShutdown, maxShutdown         = time.Second, time.Hour
	minBuffered, maxBuffered         = ByteSize(1 << 20), ByteSize(1 << 40)
)

// validate checks the rules that span values or keys (required, ranges, uniqueness) on the decoded
// config. Type and key errors were reported while decoding.
func (d *decoder) validate(c *Config) {
	at := d.check

	if c.AWS.Region != "" && !region.MatchString(c.AWS.Region) {
		at("aws.region", "must be an AWS region like us-east-1, got %q", c.AWS.Region)
	}
	if c.AWS.EndpointURL != "" {
		if u, err := url.Parse(c.AWS.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			at("aws.endpoint_url", "must be an absolute http or https URL, got %q", c.AWS.EndpointURL)
		}
	}

	switch {
	case c.Leases.Table == "":
		at("leases.table", "is required")
	case !tableName.MatchString(c.Leases.Table):
		at("leases.table", "must be a DynamoDB table name (3..255 of A-Z a-z 0-9 _ . -), got %q", c.Leases.Table)
	}
	if c.Leases.RenewInterval <= 0 {
		at("leases.renew_interval", "must be greater than 0, got %s", c.Leases.RenewInterval)
	} else if c.Leases.LeaseDuration <= c.Leases.RenewInterval {
		at("leases.lease_duration", "must be greater than renew_interval (%s), got %s", c.Leases.RenewInterval, c.Leases.LeaseDuration)
	}

	if c.Server.Listen != "" {
		_, port, err := net.SplitHostPort(c.Server.Listen)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
			at("server.listen", "must be host:port like :9464 (or empty to disable the server), got %q", c.Server.Listen)
		}
	}

	if c.ShutdownTimeout < minShutdown || c.ShutdownTimeout > maxShutdown {
		at("shutdown_timeout", "must be 1s..1h, got %s", c.ShutdownTimeout)
	}

	for _, m := range []struct {
		key string
		v   ByteSize
	}{{"memory.max_buffered_bytes", c.Memory.MaxBufferedBytes}, {"memory.max_buffered_bytes_per_shard", c.Memory.MaxBufferedBytesPerShard}} {
		if m.v < minBuffered || m.v > maxBuffered {
			at(m.key, "must be 1MiB..1TiB, got %s", m.v)
		}
	}

	if len(c.Pipelines) == 0 {
		at("pipelines", "at least one pipeline is required")
	}
	names := map[string]int{}
	for i := range c.Pipelines {
		d.validatePipeline(&c.Pipelines[i], fmt.Sprintf("pipelines[%d]", i), names, i)
	}
}

// check reports a rule broken at path, unless decoding already reported that path or a parent of it:
// `source: [x]` is one error, not also "source is required".
func (d *decoder) check(path, format string, args ...any) {
	for p := path; ; {
		if d.failed[p] {
			return
		}
		if p == "" {
			break
		}
		p = p[:max(strings.LastIndexAny(p, ".["), 0)]
	}
	d.errorf(d.line(path), path, format, args...)
}

func (d *decoder) validatePipeline(p *Pipeline, path string, names map[string]int, i int) {
	at := func(key, format string, args ...any) { d.check(joinKey(path, key), format, args...) }

	switch first, dup := names[p.Name]; {
	case p.Name == "":
		at("name", "is required")
	case !pipelineName.MatchString(p.Name):
		at("name", "must be 1..100 of A-Z a-z 0-9 _ . - (it is part of lease keys), got %q", p.Name)
	case dup && d.inCode:
		at("name", "duplicate pipeline name %q (also pipelines[%d])", p.Name, first)
	case dup:
		at("name", "duplicate pipeline name %q (also pipelines[%d], line %d)", p.Name, first, d.line(fmt.Sprintf("pipelines[%d].name", first)))
	default:
		names[p.Name] = i
	}

	s := p.Source
	switch {
	case s.Table == "" && s.StreamARN == "":
		at("source", "is required: set exactly one of table and stream_arn")
	case s.Table != "" && s.StreamARN != "":
		at("source", "set exactly one of table and stream_arn, not both")
	case s.Table != "" && !tableName.MatchString(s.Table) && !tableARN.MatchString(s.Table):
		at("source.table", "must be a DynamoDB table name (3..255 of A-Z a-z 0-9 _ . -) or table ARN, got %q", s.Table)
	case s.StreamARN != "" && !streamARN.MatchString(s.StreamARN):
		at("source.stream_arn", "must be a stream ARN like arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2024-01-01T00:00:00.000, got %q", s.StreamARN)
	}

	switch ts := s.StartingPositionTimestamp; {
	case s.StartingPosition == AtTimestamp && ts.IsZero():
		at("source.starting_position_timestamp", "is required with starting_position AT_TIMESTAMP (an RFC 3339 time like 2026-11-28T10:00:00Z)")
	case s.StartingPosition != AtTimestamp && !ts.IsZero():
		at("source.starting_position_timestamp", "is only for starting_position AT_TIMESTAMP, got starting_position %s", s.StartingPosition)
	}

	if p.PollInterval < minPollInterval || p.PollInterval > maxPollInterval {
		at("poll_interval", "must be 10ms..5m, got %s", p.PollInterval)
	}
	if idle := p.IdlePollInterval; idle != 0 && (idle < p.PollInterval || idle > maxIdlePollInterval) {
		at("idle_poll_interval", "must be 0 (off) or poll_interval (%s)..10s, got %s", p.PollInterval, idle)
	}
	if p.BatchSize < minBatchSize || p.BatchSize > maxBatchSize {
		at("batch_size", "must be 1..10000, got %d", p.BatchSize)
	}
	if p.MaxBatchingWindow < 0 || p.MaxBatchingWindow > maxBatchingWindow {
		at("max_batching_window", "must be 0..300s, got %s", p.MaxBatchingWindow)
	}
	if p.ParallelizationFactor < minParallelization || p.ParallelizationFactor > maxParallel {
		at("parallelization_factor", "must be 1..10, got %d", p.ParallelizationFactor)
	}
	validateTumbling(p, at)
	if p.MaxRetryAttempts < -1 || p.MaxRetryAttempts > maxRetryAttempts {
		at("max_retry_attempts", "must be -1 (until the record expires) or 0..10000, got %d", p.MaxRetryAttempts)
	}
	if age, ok := p.MaxRecordAge.Limit(); ok && (age < minRecordAge || age > maxRecordAge) {
		at("max_record_age", "must be -1 (no limit) or a duration 60s..168h, got %s", age)
	}
	if _, given := d.lines[joinKey(path, "sink")]; !given && (!d.inCode || p.Sink.Type == "") {
		at("sink", "is required (known sink types: %s)", d.reg.Sinks.names())
	}
}

// windowSinks are the sink types that answer a tumbling window's state.
var windowSinks = map[string]bool{"http": true, "lambda": true}

// validateTumbling checks tumbling_window: its range, and what Lambda refuses with it (a
// parallelization factor above 1), and that the sink answers with state.
func validateTumbling(p *Pipeline, at func(key, format string, args ...any)) {
	w := p.TumblingWindow
	switch {
	case w == 0:
		return
	case w < time.Second || w > maxTumblingWindow || w%time.Second != 0:
		at("tumbling_window", "must be 0 (off) or whole seconds 1s..900s, got %s", w)
		return
	}
	if p.ParallelizationFactor > 1 {
		at("parallelization_factor", "must be 1 with tumbling_window (%s), as Lambda requires, got %d", w, p.ParallelizationFactor)
	}
	if p.Sink.Type != "" && !windowSinks[p.Sink.Type] {
		at("tumbling_window", "needs a sink that answers the window's state (http, lambda), not %s", p.Sink.Type)
	}
}
