package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/sinks"
)

// CounterConfig is the config of the "counter" sink below: the keys under `sink:` besides `type`.
type CounterConfig struct {
	// Label prefixes each line the sink prints; default "seen".
	Label string `yaml:"label"`
}

// Validate names the wrong key, so that `poller validate` reports it at its line.
func (c *CounterConfig) Validate() error {
	if c.Label == "" {
		return &sinks.ConfigError{Key: "label", Msg: "must not be empty"}
	}
	return nil
}

// Counter is a sink that counts the records it is given.
type Counter struct {
	label string
	mu    sync.Mutex
	n     int
}

// Deliver accepts the whole batch. It is safe for concurrent use, as a sink must be.
func (c *Counter) Deliver(_ context.Context, b sinks.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += len(b.Records)
	fmt.Printf("%s %d record(s) of %s\n", c.label, len(b.Records), b.ShardID)
	return nil
}

// Close releases nothing.
func (c *Counter) Close(context.Context) error { return nil }

// A module adds its own sink type with one call, from an init function or from main before the
// configuration is loaded. A pipeline then selects it with `sink: {type: counter, label: ...}`; the
// config loader decodes and validates its keys like a built-in sink's.
func ExampleRegister() {
	sinks.Register("counter",
		func() *CounterConfig { return &CounterConfig{Label: "seen"} }, // the defaults
		func(cfg *CounterConfig, _ sinks.Deps) (sinks.Sink, error) { return &Counter{label: cfg.Label}, nil })

	// What the service does with a pipeline's decoded `sink:` mapping (nil: the defaults).
	sink, err := sinks.Registry.New("counter", nil, sinks.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close(context.Background())
	batch := sinks.Batch{Pipeline: "orders", ShardID: "shardId-1", Records: make([]events.DynamoDBEventRecord, 3)}
	if err := sink.Deliver(context.Background(), batch); err != nil {
		fmt.Println(err)
	}

	// A config that fails its Validate is refused before the sink is built.
	_, err = sinks.Registry.New("counter", &CounterConfig{}, sinks.Deps{})
	var ce *sinks.ConfigError
	fmt.Println(errors.As(err, &ce), err)
	// Output:
	// seen 3 record(s) of shardId-1
	// true counter sink: label: must not be empty
}
