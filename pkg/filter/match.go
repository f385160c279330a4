package filter

import "github.com/aws/aws-lambda-go/events"

// node is a compiled pattern object: every field and every $or group must match (AND); a group
// matches when one of its branches does. A field holds a value list (leaf), a nested object
// (child), or both when the pattern names the key twice.
type node struct {
	fields []field
	ors    [][]*node
}

type field struct {
	name  string
	leaf  *leafRule
	child *node
}

// leafRule is a compiled value list, such as ["INSERT", {"prefix": "x"}]: it matches when any
// matcher matches any leaf value at the field's path (OR), or by the exists operators, which
// look only at whether there is a leaf value there at all.
type leafRule struct {
	matchers []matcher
	exists   bool // holds {"exists": true}
	absent   bool // holds {"exists": false}
}

// match evaluates the object pattern n at v. When v is an array, one element must match all of
// n: fields are never combined across elements of an array (Lambda's array-consistent matching).
// An empty array has no elements, so it is matched like a missing value.
func (n *node) match(v value) bool {
	if l, ok := v.array(); ok {
		if l == 0 {
			return n.matchOne(value{})
		}
		for i := range l {
			if n.match(v.elem(i)) {
				return true
			}
		}
		return false
	}
	return n.matchOne(v)
}

func (n *node) matchOne(v value) bool {
	for i := range n.fields {
		f := &n.fields[i]
		fv := v.field(f.name)
		if f.leaf != nil && !f.leaf.match(fv) {
			return false
		}
		if f.child != nil && !f.child.match(fv) {
			return false
		}
	}
	for _, group := range n.ors {
		ok := false
		for _, branch := range group {
			if branch.matchOne(v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// match evaluates the value list r at v. Leaf values are v itself or, when v is an array, its
// elements; objects (and so DynamoDB's {"S": ...} wrappers) are not leaves, which is why
// {"exists": true} on an attribute name never matches and {"exists": false} always does, as
// in Lambda. A missing field has no leaf value: only {"exists": false} matches it.
func (r *leafRule) match(v value) bool {
	found, matched := r.scan(v)
	return matched || found && r.exists || !found && r.absent
}

func (r *leafRule) scan(v value) (found, matched bool) {
	if n, ok := v.array(); ok {
		for i := range n {
			f, m := r.scan(v.elem(i)) // arrays nest only in decoded JSON, never in a record
			if m {
				return true, true
			}
			found = found || f
		}
		return found, false
	}
	l, ok := v.asLeaf()
	if !ok {
		return false, false
	}
	for _, m := range r.matchers {
		if m.match(l) {
			return true, true
		}
	}
	return true, false
}

// Match reports whether the record matches the pattern. It reads the record as the JSON Lambda
// would give a handler, without marshalling it. A nil pattern or record matches nothing.
// Match is safe for concurrent use.
func (p *Pattern) Match(r *events.DynamoDBEventRecord) bool {
	if p == nil || r == nil {
		return false
	}
	return p.root.matchOne(value{k: kRecord, rec: r})
}

// matchJSON is Match on a record given as decoded JSON (decoded with UseNumber): the reference
// that tests hold Match to, since it reads exactly what Lambda's filter reads.
func (p *Pattern) matchJSON(doc map[string]any) bool {
	return p.root.matchOne(value{k: kJSON, j: doc})
}

// Set is the OR of several patterns (a pipeline's filters list).
type Set []*Pattern

// Match reports whether any pattern of the set matches the record. An empty set matches every
// record: a pipeline without filters passes everything.
func (s Set) Match(r *events.DynamoDBEventRecord) bool {
	if len(s) == 0 {
		return true
	}
	for _, p := range s {
		if p.Match(r) {
			return true
		}
	}
	return false
}
