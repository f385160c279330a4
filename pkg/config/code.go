package config

import (
	"fmt"
	"reflect"
)

// Validate checks a config built in code by the rules Parse applies to a file: required values,
// ranges, unique pipeline names, filter patterns that compile, and sink and on_failure types that are
// registered in reg, with a config of the type's own that passes its Validate. It returns nil or every
// problem, joined, as *Error without a line (Errors lists them), e.g.
// `pipelines[0].batch_size: must be 1..10000, got 0`.
//
// A config from Load or Parse is valid already; pkg/service checks every config it is given again.
func Validate(c *Config, reg Registries) error {
	d := newDecoder(c.File, reg)
	d.inCode = true
	d.validate(c)
	for i := range c.Pipelines {
		p, path := &c.Pipelines[i], fmt.Sprintf("pipelines[%d]", i)
		if p.Sink.Type != "" {
			d.checkPlugin(&p.Sink, joinKey(path, "sink"), "sink", reg.Sinks)
		}
		if p.OnFailure != nil {
			d.checkPlugin(p.OnFailure, joinKey(path, "on_failure"), "destination", reg.Destinations)
		}
		for j, f := range p.Filters {
			if reg.CheckFilter == nil {
				break
			}
			if err := reg.CheckFilter([]byte(f.Pattern)); err != nil {
				d.errorf(f.Line, fmt.Sprintf("%s.filters[%d].pattern", path, j), "%v", err)
			}
		}
	}
	return joinErrors(d.errs)
}

// checkPlugin checks a sink or destination of a config built in code: a registered type, and a
// config of the type's own (nil: its defaults) that passes its Validate.
func (d *decoder) checkPlugin(p *Plugin, path, kind string, types PluginTypes) {
	typePath := joinKey(path, "type")
	newConfig, ok := types[p.Type]
	switch {
	case p.Type == "":
		d.errorf(0, typePath, "is required (known %s types: %s)", kind, types.names())
		return
	case !ok:
		d.errorf(0, typePath, "unknown %s type %q (known: %s)", kind, p.Type, types.names())
		return
	case p.Config == nil:
		return
	}
	if want := newConfig(); reflect.TypeOf(p.Config) != reflect.TypeOf(want) {
		d.errorf(0, path, "the config of %s type %q is %T, want %T", kind, p.Type, p.Config, want)
		return
	}
	if v, ok := p.Config.(validator); ok {
		if err := v.Validate(); err != nil {
			d.pluginErrors(err, p.Node, path)
		}
	}
}
