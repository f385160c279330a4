package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodeVisits bounds the work of one Parse. A config is a few thousand nodes, but aliases can make
// it exponential ("billion laughs"), so every node visited while decoding counts, through aliases too.
const maxNodeVisits = 100_000

// decoder decodes a YAML node tree strictly into Go values: every key must be known, every value of
// the right kind, and every problem is recorded (with its line and key path) rather than stopping at
// the first. yaml.v3's own Decode is not used for structs because Node.Decode ignores KnownFields and
// loses the key path.
type decoder struct {
	file  string
	reg   Registries
	errs  []*Error
	lines map[string]int // key path -> line of the key (or list item) it was read from
	// failed holds the key paths that decoding reported, so validation does not pile on.
	failed map[string]bool
	// visits counts nodes decoded, against maxNodeVisits; tooDeep is set once the budget is spent.
	visits  int
	tooDeep bool
	// expanding holds the nodes being decoded, to refuse an alias inside its own anchor.
	expanding map[*yaml.Node]bool
	// broken holds the values whose ${...} expansion failed: reported once, then skipped.
	broken map[*yaml.Node]bool
	// expanded holds the values ${...} expansion produced; expandedAt the same by the key path each
	// was decoded at (an alias's too), so that errors about them name the variables (redact).
	expanded   map[*yaml.Node]expansion
	expandedAt map[string]expansion
	// inCode is set when the config was built in code (Validate), not decoded: no key was "given",
	// and nothing has a line.
	inCode bool
}

func newDecoder(file string, reg Registries) *decoder {
	return &decoder{file: file, reg: reg, lines: map[string]int{}, failed: map[string]bool{},
		expanding: map[*yaml.Node]bool{}, broken: map[*yaml.Node]bool{},
		expanded: map[*yaml.Node]expansion{}, expandedAt: map[string]expansion{}}
}

// errorf records a problem. Its message never shows a value that ${...} expansion produced (redact).
func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.failed[path] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: d.redact(path, fmt.Sprintf(format, args...))})
}

// line returns the line recorded for path, else for its nearest recorded parent, else 0.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.lines[""]
		}
		path = path[:i]
	}
}

// nodeDecoder is a type that decodes itself from a node (Filter, RecordAge).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// defaulter is a list element that starts from defaults (Pipeline).
type defaulter interface {
	setDefaults()
}

// validator is a plugin config that checks itself after decoding.
type validator interface {
	Validate() error
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeDecoderType     = reflect.TypeFor[nodeDecoder]()
)

// enter counts a visit and follows an alias to its anchor. It returns nil when the node cannot be
// decoded: the budget is spent, the alias is inside its own anchor (both reported here), or the value
// is broken (reported already). leave must be called with the returned node after decoding it.
func (d *decoder) enter(n *yaml.Node, path string) *yaml.Node {
	d.visits++
	if d.visits > maxNodeVisits {
		if !d.tooDeep {
			d.tooDeep = true
			d.errorf(n.Line, path, "document too large: more than %d nodes once aliases are expanded", maxNodeVisits)
		}
		return nil
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.expanding[n.Alias] {
			d.errorf(n.Line, path, "alias *%s refers to a value that contains it", n.Value)
			return nil
		}
		n = n.Alias
	}
	if d.broken[n] {
		return nil
	}
	if e, ok := d.expanded[n]; ok {
		d.expandedAt[path] = e
	}
	d.expanding[n] = true
	return n
}

func (d *decoder) leave(n *yaml.Node) {
	if n != nil {
		delete(d.expanding, n)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// maxShownRunes is how much of a long value describe shows.
const maxShownRunes = 80

// describe shows a node in an error message: a scalar as written (quoted when it is a string), a
// collection by its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		if n.Alias != nil {
			return describe(n.Alias)
		}
	case yaml.ScalarNode:
		v := n.Value
		if r := []rune(v); len(r) > maxShownRunes {
			v = string(r[:maxShownRunes]) + "..."
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		return v
	}
	return "nothing"
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode decodes n into v, which must be settable. A null node leaves v as it is (its default).
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = d.enter(n, path)
	if n == nil {
		return
	}
	defer d.leave(n)
	if isNull(n) {
		return
	}
	if v.Kind() != reflect.Pointer && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.Type() == durationType {
		if dur, ok := d.duration(n, path); ok {
			v.SetInt(int64(dur))
		}
		return
	}
	if v.Kind() != reflect.Pointer && v.Addr().Type().Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "must be a single value, got %s", describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n.Line, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "must be a mapping, got %s", describe(n))
			return
		}
		d.decodeEntries(d.entries(n, path), path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			elemPath := indexPath(path, i)
			d.lines[elemPath] = item.Line
			if def, ok := s.Index(i).Addr().Interface().(defaulter); ok {
				def.setDefaults()
			}
			d.decode(item, elemPath, s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n.Line, path, "must be a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		d.scalar(n, path, v, "a boolean (true or false)", "!!bool")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.scalar(n, path, v, "an integer", "!!int")
	case reflect.Float32, reflect.Float64:
		d.scalar(n, path, v, "a number", "!!int", "!!float")
	case reflect.Interface:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n.Line, path, "cannot decode %s: %v", describe(n), err)
		}
	default:
		d.errorf(n.Line, path, "cannot decode into %s (a bug in the config type)", v.Type())
	}
}

// scalar decodes a bool or number with yaml.v3, once the node's tag says it is one: yaml.v3 alone would
// truncate 1.5 into an int and take "yes" for true.
func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value, what string, tags ...string) {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		d.errorf(n.Line, path, "must be %s, got %s", what, describe(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.errorf(n.Line, path, "%s is out of range for %s", n.Value, v.Type())
	}
}

// duration reads a Go duration string. A bare integer is refused (is 5 seconds or nanoseconds?),
// except 0, which means the same in every unit.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			if dur, err := time.ParseDuration(n.Value); err == nil {
				return dur, true
			}
		case "!!int":
			if n.Value == "0" {
				return 0, true
			}
			d.errorf(n.Line, path, "must be a duration with a unit, like 250ms or 5s, got %s", n.Value)
			return 0, false
		}
	}
	d.errorf(n.Line, path, "must be a duration like 250ms or 5s, got %s", describe(n))
	return 0, false
}

// entry is one key: value pair of a mapping.
type entry struct {
	key, value *yaml.Node
}

// entries lists a mapping's pairs with YAML merge keys (<<: *anchor) applied: keys written in the
// mapping win over merged ones, and earlier merged mappings win over later ones. Duplicate and
// non-scalar keys are reported and dropped.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var own, merged []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeEntries(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, joinKey(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, entry{k, v})
	}
	for _, e := range merged {
		if _, ok := seen[e.key.Value]; !ok {
			seen[e.key.Value] = e.key.Line
			own = append(own, e)
		}
	}
	return own
}

// mergeEntries returns the pairs that a merge key's value (a mapping, or a list of them) brings in.
func (d *decoder) mergeEntries(v *yaml.Node, path string) []entry {
	v = d.enter(v, path)
	if v == nil {
		return nil
	}
	defer d.leave(v)
	switch v.Kind {
	case yaml.MappingNode:
		return d.entries(v, path)
	case yaml.SequenceNode:
		var out []entry
		seen := map[string]bool{}
		for _, item := range v.Content {
			item := d.enter(item, path)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				d.errorf(item.Line, path, "a merge (<<) list must hold mappings, got %s", describe(item))
			} else {
				for _, e := range d.entries(item, path) {
					if !seen[e.key.Value] {
						seen[e.key.Value] = true
						out = append(out, e)
					}
				}
			}
			d.leave(item)
		}
		return out
	}
	d.errorf(v.Line, path, "a merge (<<) must be a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// decodeEntries decodes pairs into a struct (by yaml tag, every key known) or a map with string keys.
func (d *decoder) decodeEntries(es []entry, path string, v reflect.Value) {
	if v.Kind() == reflect.Map {
		if v.Type().Key().Kind() != reflect.String {
			d.errorf(d.line(path), path, "cannot decode into %s (a bug in the config type)", v.Type())
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, e := range es {
			p := joinKey(path, e.key.Value)
			d.lines[p] = e.key.Line
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(e.value, p, elem)
			v.SetMapIndex(reflect.ValueOf(e.key.Value).Convert(v.Type().Key()), elem)
		}
		return
	}
	fields := structFields(v.Type())
	for _, e := range es {
		p := joinKey(path, e.key.Value)
		f, ok := fields[e.key.Value]
		if !ok {
			if len(fields) == 0 {
				d.errorf(e.key.Line, p, "unknown key (no keys are allowed here)")
			} else {
				d.errorf(e.key.Line, p, "unknown key (valid keys: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			continue
		}
		d.lines[p] = e.key.Line
		fv := v.FieldByIndex(f.Index)
		if kind := f.Tag.Get("plugin"); kind != "" {
			d.decodePluginField(e.value, p, fv, kind)
			continue
		}
		d.decode(e.value, p, fv)
	}
}

// structFields maps the YAML keys of a struct to its fields, as yaml.v3 does: the yaml tag's name,
// else the lowercased field name; "-" and unexported fields are skipped; ",inline" structs are
// flattened.
func structFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for k, inner := range structFields(f.Type) {
				inner.Index = append([]int{i}, inner.Index...)
				out[k] = inner
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}
