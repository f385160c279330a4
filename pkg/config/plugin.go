package config

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PluginTypes maps a sink or destination type name to a constructor of its config: a pointer to a
// struct with yaml tags and its defaults set (or nil for a type without keys). If the value has a
// `Validate() error` method, it is called after decoding; an error in its tree that implements
// `interface{ ConfigKey() string }` (such as *sinks.ConfigError) is reported at that key's line.
type PluginTypes map[string]func() any

// names lists the registered types, sorted, for error messages.
func (t PluginTypes) names() string {
	if len(t) == 0 {
		return "none registered"
	}
	return strings.Join(slices.Sorted(maps.Keys(t)), ", ")
}

// configKeyer is an error about one key inside a plugin's mapping, e.g. "url" or "headers.X-Token".
type configKeyer interface {
	error
	ConfigKey() string
}

// decodePluginField decodes a Plugin or *Plugin field; kind ("sink" or "destination") picks the
// registry. A null value leaves the field as it is: a zero Plugin (reported missing by validation) or
// a nil *Plugin (no on_failure).
func (d *decoder) decodePluginField(n *yaml.Node, path string, fv reflect.Value, kind string) {
	types := d.reg.Sinks
	if kind == "destination" {
		types = d.reg.Destinations
	}
	n = d.enter(n, path)
	if n == nil {
		return
	}
	defer d.leave(n)
	if isNull(n) {
		if fv.Kind() != reflect.Pointer {
			d.errorf(n.Line, path, "is required (known %s types: %s)", kind, types.names())
		}
		return
	}
	var p Plugin
	if !d.decodePlugin(n, path, kind, types, &p) {
		return
	}
	if fv.Kind() == reflect.Pointer {
		fv.Set(reflect.ValueOf(&p))
	} else {
		fv.Set(reflect.ValueOf(p))
	}
}

// decodePlugin reads the type key, decodes the other keys strictly into the type's config, and
// validates it. It reports false when the plugin is unusable.
func (d *decoder) decodePlugin(n *yaml.Node, path, kind string, types PluginTypes, p *Plugin) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping with a type key, got %s", describe(n))
		return false
	}
	p.Node = n
	var rest []entry
	var typeNode *yaml.Node
	for _, e := range d.entries(n, path) {
		if e.key.Value == "type" {
			typeNode = e.value
			d.lines[joinKey(path, "type")] = e.key.Line
			continue
		}
		rest = append(rest, e)
	}
	typePath := joinKey(path, "type")
	if typeNode != nil {
		typeNode = d.enter(typeNode, typePath)
		if typeNode == nil {
			return false
		}
		d.leave(typeNode)
	}
	switch {
	case typeNode == nil || isNull(typeNode) || (typeNode.Kind == yaml.ScalarNode && typeNode.Value == ""):
		d.errorf(d.line(typePath), typePath, "is required (known %s types: %s)", kind, types.names())
		return false
	case typeNode.Kind != yaml.ScalarNode:
		d.errorf(typeNode.Line, typePath, "must be a string, got %s", describe(typeNode))
		return false
	}
	p.Type = typeNode.Value
	newConfig, ok := types[p.Type]
	if !ok {
		d.errorf(typeNode.Line, typePath, "unknown %s type %q (known: %s)", kind, p.Type, types.names())
		return false
	}
	p.Config = newConfig()
	before := len(d.errs)
	rv := reflect.ValueOf(p.Config)
	switch {
	case p.Config == nil:
		for _, e := range rest {
			d.errorf(e.key.Line, joinKey(path, e.key.Value), "unknown key (%s type %q has no keys)", kind, p.Type)
		}
	case rv.Kind() != reflect.Pointer || rv.IsNil():
		d.errorf(typeNode.Line, typePath, "%s type %q has a config of type %T, not a pointer (a bug in its registration)", kind, p.Type, p.Config)
	default:
		elem := rv.Elem()
		switch elem.Kind() {
		case reflect.Struct, reflect.Map:
			d.decodeEntries(rest, path, elem)
		default:
			d.errorf(typeNode.Line, typePath, "%s type %q has a config of type %T, not a struct (a bug in its registration)", kind, p.Type, p.Config)
		}
	}
	if len(d.errs) > before || d.failedUnder(path) {
		return false // Validate would only repeat what is reported, or judge a value that is not there
	}
	if v, ok := p.Config.(validator); ok {
		if err := v.Validate(); err != nil {
			d.pluginErrors(err, n, path)
			return false
		}
	}
	return true
}

// pluginErrors reports what a plugin's Validate returned: each error of a joined tree separately, at
// its key's line when it names one.
func (d *decoder) pluginErrors(err error, n *yaml.Node, path string) {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, inner := range multi.Unwrap() {
			if inner != nil {
				d.pluginErrors(inner, n, path)
			}
		}
		return
	}
	var ke configKeyer
	if !errors.As(err, &ke) {
		d.errorf(d.line(path), path, "%v", err)
		return
	}
	key := ke.ConfigKey()
	// A ConfigKey error prints as "key: msg" (sinks.ConfigError); the key goes into the path instead.
	msg := strings.TrimPrefix(ke.Error(), key+": ")
	line := keyLine(n, key)
	if line == 0 {
		line = d.line(path)
	}
	d.errorf(line, joinKey(path, key), "%s", msg)
}

// keyLine finds the line of a dotted key ("headers.X-Token") inside a mapping, matching the longest
// key at each level so keys that hold dots still resolve. It returns the deepest line found, or 0.
func keyLine(n *yaml.Node, key string) int {
	line := 0
	parts := strings.Split(key, ".")
	for depth := 0; len(parts) > 0 && n != nil && depth < 100; depth++ {
		for n.Kind == yaml.AliasNode && n.Alias != nil && depth < 100 {
			n, depth = n.Alias, depth+1
		}
		var next *yaml.Node
		for j := len(parts); j > 0 && next == nil; j-- {
			want := strings.Join(parts[:j], ".")
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == want {
						line, next, parts = n.Content[i].Line, n.Content[i+1], parts[j:]
						break
					}
				}
			case yaml.SequenceNode:
				if i, err := strconv.Atoi(strings.Trim(want, "[]")); err == nil && i >= 0 && i < len(n.Content) {
					line, next, parts = n.Content[i].Line, n.Content[i], parts[j:]
				}
			}
		}
		n = next
	}
	return line
}

// failedUnder reports whether an error was recorded at path or below it (a ${...} that failed).
func (d *decoder) failedUnder(path string) bool {
	for p := range d.failed {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}
