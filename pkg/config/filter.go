package config

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeNode reads a filter: a mapping with one key, pattern, whose value is JSON text or a YAML
// mapping. Either way Pattern becomes compact JSON, which Registries.CheckFilter must accept.
func (f *Filter) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping with a pattern key, got %s", describe(n))
		return
	}
	patternPath := joinKey(path, "pattern")
	var pattern *yaml.Node
	line := n.Line
	for _, e := range d.entries(n, path) {
		if e.key.Value != "pattern" {
			d.errorf(e.key.Line, joinKey(path, e.key.Value), "unknown key (valid keys: pattern)")
			continue
		}
		d.lines[patternPath] = e.key.Line
		pattern, line = e.value, e.key.Line
	}
	if pattern == nil {
		d.errorf(n.Line, patternPath, "is required")
		return
	}
	pattern = d.enter(pattern, patternPath)
	if pattern == nil {
		return
	}
	defer d.leave(pattern)
	f.Line = line
	var buf bytes.Buffer
	switch {
	case pattern.Kind == yaml.ScalarNode && pattern.ShortTag() == "!!str":
		if err := json.Compact(&buf, []byte(pattern.Value)); err != nil {
			d.errorf(line, patternPath, "is not valid JSON: %v", err)
			return
		}
	case pattern.Kind == yaml.MappingNode:
		if !d.writeJSON(&buf, pattern, patternPath) {
			return
		}
	default:
		d.errorf(line, patternPath, "must be a JSON string or a mapping, got %s", describe(pattern))
		return
	}
	if d.reg.CheckFilter != nil {
		if err := d.reg.CheckFilter(buf.Bytes()); err != nil {
			d.errorf(line, patternPath, "%v", err)
			return
		}
	}
	f.Pattern = buf.String()
}

// writeJSON writes a YAML value as compact JSON, keeping the mapping's key order.
func (d *decoder) writeJSON(buf *bytes.Buffer, n *yaml.Node, path string) bool {
	n = d.enter(n, path)
	if n == nil {
		return false
	}
	defer d.leave(n)
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i, e := range d.entries(n, path) {
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := marshalJSON(e.key.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if !d.writeJSON(buf, e.value, joinKey(path, e.key.Value)) {
				return false
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if !d.writeJSON(buf, item, indexPath(path, i)) {
				return false
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		switch n.ShortTag() {
		case "!!null":
			v = nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				d.errorf(n.Line, path, "%s is not a JSON boolean", n.Value)
				return false
			}
			v = b
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				d.errorf(n.Line, path, "%s is not a JSON number", n.Value)
				return false
			}
			v = f
			if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				v = i // keep integers exact
			}
		default:
			v = n.Value
		}
		b, err := marshalJSON(v)
		if err != nil {
			d.errorf(n.Line, path, "cannot be written as JSON: %v", err)
			return false
		}
		buf.Write(b)
	default:
		d.errorf(n.Line, path, "cannot be written as JSON")
		return false
	}
	return true
}

// decodeNode reads max_record_age: the integer -1 (no limit) or a Go duration.
func (a *RecordAge) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if n.Value != "-1" {
			d.errorf(n.Line, path, "must be -1 (no limit) or a duration 60s..168h, got %s", n.Value)
			return
		}
		*a = NoLimit
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		// A negative duration is refused, so "-1ns" cannot pass for NoLimit.
		if dur, err := time.ParseDuration(n.Value); err == nil && dur >= 0 {
			*a = RecordAge(dur)
			return
		}
	}
	d.errorf(n.Line, path, "must be -1 (no limit) or a duration 60s..168h, got %s", describe(n))
}

// marshalJSON is json.Marshal without HTML escaping, so ">=" stays ">=" as a JSON string pattern keeps it.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
