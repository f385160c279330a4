package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Pattern is one compiled Lambda filter pattern. It is immutable, and safe for concurrent use.
type Pattern struct {
	root *node
	src  string
}

// String returns the pattern's JSON text, as given to Compile.
func (p *Pattern) String() string { return p.src }

// PatternError is a pattern that does not compile. Path locates the problem in the pattern, as
// field names joined by dots and [i] for the elements of a list, e.g. dynamodb.NewImage.TopScore.N[0]
// (empty for the pattern as a whole); Reason says what is wrong.
type PatternError struct {
	Path   string
	Reason string
}

func (e *PatternError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

func errorf(path, format string, args ...any) error {
	return &PatternError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Compile parses one Lambda filter pattern (JSON text): an object whose keys are field names of the
// record, whose objects descend into the record, and whose arrays list the values a field may have.
//
// Keys repeated in one object are merged, as Lambda's rule compiler does: two objects under the
// same key both apply (so AWS's documented {"dynamodb": {"NewImage": …}, "dynamodb": {"OldImage": …}}
// requires both), and of two value lists for the same field the last one wins. A key is one
// field name even when it contains dots.
func Compile(pattern []byte) (*Pattern, error) {
	dec := json.NewDecoder(bytes.NewReader(pattern))
	dec.UseNumber()
	p := &parser{dec: dec}
	t, err := p.token("")
	if err != nil {
		return nil, err
	}
	if t != json.Delim('{') {
		return nil, errorf("", "a pattern must be a JSON object, got %s", describe(t))
	}
	root := &node{}
	if err := p.object(root, "", false); err != nil {
		return nil, err
	}
	if t, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, errorf("", "invalid JSON after the pattern at byte %d: %v", dec.InputOffset(), err)
		}
		return nil, errorf("", "the pattern is followed by %s; give one JSON object", describe(t))
	}
	return &Pattern{root: root, src: string(pattern)}, nil
}

type parser struct {
	dec *json.Decoder
}

func (p *parser) token(path string) (json.Token, error) {
	t, err := p.dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return nil, errorf(path, "unexpected end of the pattern")
	case err != nil:
		return nil, errorf(path, "invalid JSON at byte %d: %v", p.dec.InputOffset(), err)
	}
	return t, nil
}

// orReserved are the names that cannot be fields inside $or, as in Lambda's rule compiler:
// operator names, and names it keeps for future operators.
var orReserved = map[string]bool{
	"exactly": true, "equals-ignore-case": true, "prefix": true, "suffix": true, "anything-but": true,
	"exists": true, "wildcard": true, "numeric": true, "cidr": true,
	"=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regex": true, "not-wildcard": true, "not-equals-ignore-case": true,
	"date-after": true, "date-on-or-after": true, "date-before": true, "date-on-or-before": true,
	"in-date-range": true, "ip-address-in-range": true, "ip-address-not-in-range": true,
}

// object reads the members of an object, its '{' already read, into n.
func (p *parser) object(n *node, path string, inOr bool) error {
	members := 0
	for {
		t, err := p.token(path)
		if err != nil {
			return err
		}
		if t == json.Delim('}') {
			break
		}
		members++
		key := t.(string) // the decoder only yields strings as object keys
		kp := joinPath(path, key)
		if key == "$or" {
			if err := p.or(n, kp); err != nil {
				return err
			}
			continue
		}
		if inOr && orReserved[key] {
			return errorf(kp, "%q is an operator name, not allowed as a field name inside $or", key)
		}
		t, err = p.token(kp)
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'):
			f := n.field(key)
			if f.child == nil {
				f.child = &node{}
			}
			if err := p.object(f.child, kp, inOr); err != nil {
				return err
			}
		case json.Delim('['):
			r, err := p.values(kp)
			if err != nil {
				return err
			}
			n.field(key).leaf = r
		default:
			return errorf(kp, "must be an array of values or an object, got %s (write [%s] to match that value)",
				describe(t), jsonText(t))
		}
	}
	if members == 0 {
		return errorf(path, "empty object: name at least one field")
	}
	return nil
}

// field returns n's field name, adding it when new.
func (n *node) field(name string) *field {
	for i := range n.fields {
		if n.fields[i].name == name {
			return &n.fields[i]
		}
	}
	n.fields = append(n.fields, field{name: name})
	return &n.fields[len(n.fields)-1]
}

// or reads the value of a "$or" member: an array of at least two objects, each an alternative
// evaluated at the same place of the record as the object holding the $or.
func (p *parser) or(n *node, path string) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if t != json.Delim('[') {
		return errorf(path, "must be an array of at least two objects, got %s", describe(t))
	}
	var group []*node
	for i := 0; ; i++ {
		t, err := p.token(path)
		if err != nil {
			return err
		}
		if t == json.Delim(']') {
			break
		}
		bp := fmt.Sprintf("%s[%d]", path, i)
		if t != json.Delim('{') {
			return errorf(bp, "must be an object, got %s", describe(t))
		}
		b := &node{}
		if err := p.object(b, bp, true); err != nil {
			return err
		}
		group = append(group, b)
	}
	if len(group) < 2 {
		return errorf(path, "must hold at least two objects, got %d", len(group))
	}
	n.ors = append(n.ors, group)
	return nil
}

// values reads a value list, its '[' already read.
func (p *parser) values(path string) (*leafRule, error) {
	r := &leafRule{}
	i := 0
	for ; ; i++ {
		t, err := p.token(path)
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			break
		}
		ep := fmt.Sprintf("%s[%d]", path, i)
		switch t := t.(type) {
		case string:
			r.matchers = append(r.matchers, exactString(t))
		case json.Number:
			d, ok := parseDecimal(string(t))
			if !ok { // cannot happen: the decoder only yields valid JSON numbers
				return nil, errorf(ep, "invalid number %s", t)
			}
			r.matchers = append(r.matchers, exactNumber{d: d})
		case bool:
			r.matchers = append(r.matchers, exactBool(t))
		case nil:
			r.matchers = append(r.matchers, exactNull{})
		case json.Delim:
			if t != '{' {
				return nil, errorf(ep, "nested arrays are not allowed in a value list")
			}
			if err := p.operator(r, ep); err != nil {
				return nil, err
			}
		}
	}
	if i == 0 {
		return nil, errorf(path, "empty array: list at least one value")
	}
	return r, nil
}

// joinPath appends a field name to a path; names that would read ambiguously are quoted.
func joinPath(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\" \t\n") {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a JSON token for an error message.
func describe(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "string " + strconv.Quote(t)
	case json.Number:
		return "number " + string(t)
	case bool:
		return "boolean " + strconv.FormatBool(t)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", t)
}

// jsonText writes a scalar token back as JSON, for hints.
func jsonText(t json.Token) string {
	switch t := t.(type) {
	case string:
		return strconv.Quote(t)
	case json.Number:
		return string(t)
	case bool:
		return strconv.FormatBool(t)
	case nil:
		return "null"
	}
	return "..."
}
