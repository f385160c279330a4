package sinks

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/poller-dev/poller/pkg/plugin"
)

func init() {
	Register("eventbridge", func() *EventBridgeConfig {
		return &EventBridgeConfig{EventBus: "default", Source: "poller", DetailType: "DynamoDB Stream Record"}
	}, func(c *EventBridgeConfig, d Deps) (Sink, error) { return NewEventBridge(*c, d) })
}

// eventBridgeLimits: PutEvents takes 10 entries and 256 KiB in all (the sizes of their Source,
// DetailType and Detail).
var eventBridgeLimits = limits{count: 10, callBytes: 256 * 1024, recordBytes: 256 * 1024}

// EventBridgeConfig is the eventbridge sink's config.
type EventBridgeConfig struct {
	// EventBus is the bus's name or ARN; default "default".
	EventBus string `yaml:"event_bus"`
	// Source is each event's source; default "poller".
	Source string `yaml:"source"`
	// DetailType is each event's detail-type; default "DynamoDB Stream Record".
	DetailType   string `yaml:"detail_type"`
	AWSOverrides `yaml:",inline"`
}

// Validate checks every key; errors are *ConfigError.
func (c *EventBridgeConfig) Validate() error {
	var errs []error
	for _, k := range []struct{ key, value string }{{"event_bus", c.EventBus}, {"source", c.Source}, {"detail_type", c.DetailType}} {
		if k.value == "" {
			errs = append(errs, &plugin.ConfigError{Key: k.key, Msg: "must not be empty"})
		}
	}
	return c.Check(errs)
}

// eventBridgeAPI is the part of the EventBridge client the sink uses.
type eventBridgeAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge puts each stream record, its JSON as in the event, as the Detail of one event, with
// PutEvents.
type EventBridge struct {
	bus, source, detailType string // immutable
	client                  eventBridgeAPI
	fanout
}

var _ Sink = (*EventBridge)(nil)

// NewEventBridge builds an eventbridge sink. It does not contact EventBridge.
func NewEventBridge(cfg EventBridgeConfig, deps Deps) (*EventBridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &EventBridge{bus: cfg.EventBus, source: cfg.Source, detailType: cfg.DetailType,
		client: eventbridge.NewFromConfig(cfg.Apply(deps.AWS))}
	e.fanout = fanout{service: "EventBridge PutEvents to " + cfg.EventBus, lim: eventBridgeLimits, send: e.send,
		size: func(m *message) int { return len(m.body) + len(cfg.Source) + len(cfg.DetailType) }}
	return e, nil
}

// Deliver puts the batch's records in order; see fanout.deliver.
func (e *EventBridge) Deliver(ctx context.Context, b Batch) error { return e.deliver(ctx, b) }

// Close does nothing: the client holds no resources that need releasing.
func (e *EventBridge) Close(context.Context) error { return nil }

func (e *EventBridge) send(ctx context.Context, msgs []message) (int, error) {
	in := &eventbridge.PutEventsInput{Entries: make([]ebtypes.PutEventsRequestEntry, len(msgs))}
	for i, m := range msgs {
		in.Entries[i] = ebtypes.PutEventsRequestEntry{EventBusName: aws.String(e.bus), Source: aws.String(e.source),
			DetailType: aws.String(e.detailType), Detail: aws.String(string(m.body))}
	}
	out, err := e.client.PutEvents(ctx, in)
	if err != nil {
		return 0, awsError(err)
	}
	return firstFailedInOrder(len(msgs), out.Entries, func(r ebtypes.PutEventsResultEntry) (code, msg *string) { return r.ErrorCode, r.ErrorMessage })
}
