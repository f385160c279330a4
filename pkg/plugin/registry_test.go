package plugin

import (
	"errors"
	"strings"
	"testing"
)

type cfg struct{ bad bool }

func (c *cfg) Validate() error {
	if c.bad {
		return errors.New("bad key")
	}
	return nil
}

type other struct{}

func TestRegistryNew(t *testing.T) {
	r := NewRegistry[string, int](Names{Package: "things", Kind: "thing", Noun: "thing"})
	r.Register(Registration[string, int]{
		Type:      "echo",
		NewConfig: func() any { return &cfg{} },
		New:       func(c any, deps int) (string, error) { return strings.Repeat("x", deps), nil },
	})
	tests := []struct {
		name    string
		typ     string
		cfg     any
		want    string
		wantErr string
	}{
		{name: "a registered type with a nil config uses its defaults", typ: "echo", want: "xx"},
		{name: "a valid config builds the plugin", typ: "echo", cfg: &cfg{}, want: "xx"},
		{name: "an unknown type lists the known ones", typ: "nope", wantErr: `unknown thing type "nope" (known: echo)`},
		{name: "a config of another type is refused", typ: "echo", cfg: &other{}, wantErr: "echo thing: config is *plugin.other, want *plugin.cfg"},
		{name: "an invalid config is validated again and refused", typ: "echo", cfg: &cfg{bad: true}, wantErr: "echo thing: bad key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.New(tt.typ, tt.cfg, 2)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("New() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("New() = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
	defer func() {
		if p := recover(); p != `things: type "echo" registered twice` {
			t.Errorf("registering twice panicked with %v, want the duplicate message", p)
		}
	}()
	r.Register(Registration[string, int]{Type: "echo", NewConfig: func() any { return &cfg{} }, New: func(any, int) (string, error) { return "", nil }})
}
