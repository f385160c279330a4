package plugin

import (
	"errors"
	"fmt"
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
	Register(r, "echo", func() *cfg { return &cfg{} }, func(c *cfg, deps int) (string, error) { return strings.Repeat("x", deps), nil })
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
	Register(r, "echo", nil, func(*cfg, int) (string, error) { return "", nil })
}

func TestRegisterRefusesAnIncompleteRegistration(t *testing.T) {
	r := NewRegistry[string, int](Names{Package: "things", Kind: "thing", Noun: "thing"})
	tests := []struct {
		name  string
		typ   string
		build func(*cfg, int) (string, error)
	}{
		{"an empty type", "", func(*cfg, int) (string, error) { return "", nil }},
		{"a nil build", "echo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != fmt.Sprintf("things: incomplete registration for type %q", tt.typ) {
					t.Errorf("Register() panicked with %v, want the incomplete message", p)
				}
			}()
			Register(r, tt.typ, nil, tt.build)
		})
	}
}

func TestRegisterWithoutDefaultsUsesTheZeroConfig(t *testing.T) {
	r := NewRegistry[bool, struct{}](Names{Package: "things", Kind: "thing", Noun: "thing"})
	Register(r, "zero", nil, func(c *cfg, _ struct{}) (bool, error) { return c.bad, nil })
	if got := r.ConfigTypes()["zero"](); *got.(*cfg) != (cfg{}) {
		t.Errorf("ConfigTypes()[zero]() = %v, want a zero *cfg", got)
	}
	if got, err := r.New("zero", nil, struct{}{}); err != nil || got {
		t.Errorf("New() = %v, %v, want false, nil", got, err)
	}
}

func TestJoinConfigErrors(t *testing.T) {
	a, b := &ConfigError{Key: "a", Msg: "bad"}, &ConfigError{Key: "b", Msg: "worse"}
	if err := JoinConfigErrors(nil); err != nil {
		t.Errorf("JoinConfigErrors(nil) = %v, want nil", err)
	}
	if err := JoinConfigErrors([]error{a}); err != a {
		t.Errorf("JoinConfigErrors(a) = %v, want a itself", err)
	}
	if err := JoinConfigErrors([]error{a, b}); err == nil || err.Error() != "a: bad\nb: worse" || !errors.Is(err, b) {
		t.Errorf("JoinConfigErrors(a, b) = %v, want both joined", err)
	}
}
