package filter

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// operatorNames are the operators a value list may hold, for error messages.
var operatorNames = []string{
	"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "wildcard", "cidr", "exactly",
}

// operator reads an operator object such as {"prefix": "us-"}, its '{' already read, into r.
func (p *parser) operator(r *leafRule, path string) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if t == json.Delim('}') {
		return errorf(path, "empty object: expected an operator (%s)", strings.Join(operatorNames, ", "))
	}
	name := t.(string)
	var m matcher
	switch name {
	case "prefix", "suffix":
		m, err = p.affix(name, path)
	case "equals-ignore-case":
		var s string
		s, err = p.str(path, name)
		m = equalsIgnoreCase(s)
	case "exactly":
		var s string
		s, err = p.str(path, name)
		m = exactString(s)
	case "wildcard":
		var s string
		if s, err = p.str(path, name); err == nil {
			m, err = compileWildcard(path, s)
		}
	case "cidr":
		var s string
		if s, err = p.str(path, name); err == nil {
			m, err = compileCIDR(path, s)
		}
	case "numeric":
		m, err = p.numeric(path)
	case "anything-but":
		m, err = p.anythingBut(path)
	case "exists":
		err = p.exists(r, path)
	default:
		hint := ""
		if s := suggest(name, operatorNames); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		return errorf(path, "unknown operator %q%s; operators are %s", name, hint, strings.Join(operatorNames, ", "))
	}
	if err != nil {
		return err
	}
	if m != nil {
		r.matchers = append(r.matchers, m)
	}
	return p.end(path, name)
}

// end reads the '}' closing an operator object: one operator per object.
func (p *parser) end(path, name string) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if t != json.Delim('}') {
		if k, ok := t.(string); ok {
			return errorf(path, "%s: one operator per object, found also %q (list operators as separate values)", name, k)
		}
		return errorf(path, "%s: unexpected %s", name, describe(t))
	}
	return nil
}

// str reads the operand of op, which must be a string.
func (p *parser) str(path, op string) (string, error) {
	t, err := p.token(path)
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", errorf(path, "%s: operand must be a string, got %s", op, describe(t))
	}
	return s, nil
}

// affix reads the operand of prefix or suffix: a string, or {"equals-ignore-case": string}.
func (p *parser) affix(op, path string) (matcher, error) {
	t, err := p.token(path)
	if err != nil {
		return nil, err
	}
	fold := false
	if t == json.Delim('{') {
		k, err := p.token(path)
		if err != nil {
			return nil, err
		}
		if k != "equals-ignore-case" {
			return nil, errorf(path, "%s: operand must be a string or {\"equals-ignore-case\": string}, got %s inside the object", op, describe(k))
		}
		if t, err = p.token(path); err != nil {
			return nil, err
		}
		fold = true
		op += ".equals-ignore-case"
	}
	s, ok := t.(string)
	if !ok {
		return nil, errorf(path, "%s: operand must be a string, got %s", op, describe(t))
	}
	if fold {
		if err := p.end(path, op); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(op, "prefix") {
		return prefix{p: s, fold: fold}, nil
	}
	return suffix{s: s, fold: fold}, nil
}

// exists reads {"exists": true|false}.
func (p *parser) exists(r *leafRule, path string) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	b, ok := t.(bool)
	if !ok {
		return errorf(path, "exists: operand must be true or false, got %s", describe(t))
	}
	if b {
		r.exists = true
	} else {
		r.absent = true
	}
	return nil
}

// numeric reads the operand of numeric: ["=", n], one bound [">", n], [">=", n], ["<", n], ["<=", n],
// or a range: a lower bound then an upper one, as [">", 0, "<=", 5].
func (p *parser) numeric(path string) (matcher, error) {
	t, err := p.token(path)
	if err != nil {
		return nil, err
	}
	if t != json.Delim('[') {
		return nil, errorf(path, "numeric: operand must be an array such as [\">\", 0, \"<=\", 5], got %s", describe(t))
	}
	var m numeric
	terms := 0
	for {
		t, err := p.token(path)
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			break
		}
		op, ok := t.(string)
		if !ok {
			return nil, errorf(path, "numeric: expected a comparison (=, <, <=, >, >=) at position %d, got %s", terms*2, describe(t))
		}
		t, err = p.token(path)
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			return nil, errorf(path, "numeric: %q needs a number after it", op)
		}
		num, ok := t.(json.Number)
		if !ok {
			return nil, errorf(path, "numeric: value after %q must be a number, got %s", op, describe(t))
		}
		d, _ := parseDecimal(string(num)) // the decoder only yields valid JSON numbers
		terms++
		switch {
		case op == "=" && terms == 1:
			m = numeric{lo: d, hi: d, hasLo: true, hasHi: true, loIncl: true, hiIncl: true}
		case (op == ">" || op == ">=") && terms == 1:
			m.lo, m.hasLo, m.loIncl = d, true, op == ">="
		case (op == "<" || op == "<=") && (terms == 1 || terms == 2 && m.hasLo && !m.hasHi):
			m.hi, m.hasHi, m.hiIncl = d, true, op == "<="
		case op == "=" || op == ">" || op == ">=" || op == "<" || op == "<=":
			return nil, errorf(path, "numeric: malformed range: %q cannot follow the earlier terms (write = alone, or a lower bound > or >= then an upper bound < or <=)", op)
		default:
			return nil, errorf(path, "numeric: unknown comparison %q (use =, <, <=, >, >=)", op)
		}
	}
	if terms == 0 {
		return nil, errorf(path, "numeric: empty array: expected a comparison and a number")
	}
	if m.hasLo && m.hasHi {
		c := cmpDecimal(&m.lo, &m.hi)
		if c > 0 || c == 0 && !(m.loIncl && m.hiIncl) {
			return nil, errorf(path, "numeric: malformed range: no number is above the lower bound and below the upper bound")
		}
	}
	return m, nil
}

// anythingBut reads the operand of anything-but: a string, a number, a non-empty list of strings
// or of numbers, or an object {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": a string or a
// list of strings}.
func (p *parser) anythingBut(path string) (matcher, error) {
	t, err := p.token(path)
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case string:
		return anythingBut{strs: []string{t}}, nil
	case json.Number:
		d, _ := parseDecimal(string(t))
		return anythingBut{nums: []decimal{d}}, nil
	case json.Delim:
		if t == '[' {
			return p.anythingButList(path)
		}
		return p.anythingButObject(path)
	}
	return nil, errorf(path, "anything-but: operand must be a string, a number, a list of either, or an object with prefix, suffix, equals-ignore-case or wildcard; got %s", describe(t))
}

func (p *parser) anythingButList(path string) (matcher, error) {
	var m anythingBut
	for {
		t, err := p.token(path)
		if err != nil {
			return nil, err
		}
		if t == json.Delim(']') {
			break
		}
		switch t := t.(type) {
		case string:
			m.strs = append(m.strs, t)
		case json.Number:
			d, _ := parseDecimal(string(t))
			m.nums = append(m.nums, d)
		default:
			return nil, errorf(path, "anything-but: list values must be strings or numbers, got %s", describe(t))
		}
	}
	switch {
	case len(m.strs) == 0 && len(m.nums) == 0:
		return nil, errorf(path, "anything-but: empty list")
	case len(m.strs) > 0 && len(m.nums) > 0:
		return nil, errorf(path, "anything-but: a list must hold only strings or only numbers, not both")
	}
	return m, nil
}

// anythingButObject reads {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": operand}, its '{' already read,
// and the '}' closing it.
func (p *parser) anythingButObject(path string) (matcher, error) {
	t, err := p.token(path)
	if err != nil {
		return nil, err
	}
	op, ok := t.(string)
	if !ok {
		return nil, errorf(path, "anything-but: empty object: expected prefix, suffix, equals-ignore-case or wildcard")
	}
	var compile func(s string) (matcher, error)
	switch op {
	case "prefix", "suffix":
		compile = func(s string) (matcher, error) {
			if s == "" {
				return nil, errorf(path, "anything-but.%s: operand must not be empty", op)
			}
			if op == "prefix" {
				return prefix{p: s}, nil
			}
			return suffix{s: s}, nil
		}
	case "equals-ignore-case":
		compile = func(s string) (matcher, error) { return equalsIgnoreCase(s), nil }
	case "wildcard":
		compile = func(s string) (matcher, error) { return compileWildcard(path, s) }
	default:
		return nil, errorf(path, "anything-but: unknown operator %q inside (use prefix, suffix, equals-ignore-case or wildcard)", op)
	}
	var m anythingButString
	t, err = p.token(path)
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case string:
		x, err := compile(t)
		if err != nil {
			return nil, err
		}
		m = append(m, x)
	case json.Delim:
		if t != '[' {
			return nil, errorf(path, "anything-but.%s: operand must be a string or a list of strings, got an object", op)
		}
		for {
			t, err := p.token(path)
			if err != nil {
				return nil, err
			}
			if t == json.Delim(']') {
				break
			}
			s, ok := t.(string)
			if !ok {
				return nil, errorf(path, "anything-but.%s: list values must be strings, got %s", op, describe(t))
			}
			x, err := compile(s)
			if err != nil {
				return nil, err
			}
			m = append(m, x)
		}
		if len(m) == 0 {
			return nil, errorf(path, "anything-but.%s: empty list", op)
		}
	default:
		return nil, errorf(path, "anything-but.%s: operand must be a string or a list of strings, got %s", op, describe(t))
	}
	if err := p.end(path, "anything-but."+op); err != nil {
		return nil, err
	}
	return m, nil
}

// compileWildcard splits a wildcard pattern at its stars. "\*" is a literal star and "\\" a literal
// backslash; any other escape, and two stars in a row, are errors, as in Lambda.
func compileWildcard(path, s string) (matcher, error) {
	var segs []string
	var seg strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) || s[i+1] != '*' && s[i+1] != '\\' {
				return nil, errorf(path, "wildcard: invalid escape at byte %d of %q: only \\* and \\\\ may follow a backslash", i, s)
			}
			i++
			seg.WriteByte(s[i])
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				return nil, errorf(path, "wildcard: consecutive stars at byte %d of %q", i, s)
			}
			segs = append(segs, seg.String())
			seg.Reset()
		default:
			seg.WriteByte(c)
		}
	}
	return wildcard{segs: append(segs, seg.String())}, nil
}

func compileCIDR(path, s string) (matcher, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, errorf(path, "cidr: %q is not an IP prefix such as 10.0.0.0/24", s)
	}
	return cidr{p: pfx.Masked()}, nil
}

// suggest returns the name among names closest to s, if it is a likely typo of it.
func suggest(s string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, bytewise.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
