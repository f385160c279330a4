package changelog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/sinks"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "a path is enough", cfg: Config{Path: "x.log"}},
		{name: "known event names are accepted", cfg: Config{Path: "x.log", Events: []string{"INSERT", "REMOVE"}}},
		{name: "a missing path is an error about path", cfg: Config{}, wantErr: "path: required"},
		{name: "an unknown event name is an error about events", cfg: Config{Path: "x.log", Events: []string{"UPSERT"}}, wantErr: `events: must hold INSERT, MODIFY or REMOVE, got "UPSERT"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDeliverKeepsTheConfiguredEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changes.log")
	s, err := sinks.Registry.New(Type, &Config{Path: path, Events: []string{"INSERT", "REMOVE"}}, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	record := func(event, pk string) events.DynamoDBEventRecord {
		return events.DynamoDBEventRecord{EventName: event, Change: events.DynamoDBStreamRecord{
			Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute(pk)},
		}}
	}
	batch := sinks.Batch{Records: []events.DynamoDBEventRecord{record("INSERT", "a"), record("MODIFY", "a"), record("REMOVE", "a")}}
	if err := s.Deliver(context.Background(), batch); err != nil {
		t.Fatalf("Deliver() = %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "INSERT {\"pk\":{\"S\":\"a\"}}\nREMOVE {\"pk\":{\"S\":\"a\"}}\n"
	if string(data) != want {
		t.Errorf("the changelog holds %q, want %q", data, want)
	}
}
