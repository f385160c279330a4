package filter

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matcher is one value of a pattern's value list: an exact value or an operator such as
// {"prefix": "us-"}. It is tried on each leaf value found at the field's path.
type matcher interface {
	match(l leaf) bool
}

// exactString is a string value: the leaf is that string, case and all.
type exactString string

func (m exactString) match(l leaf) bool { return l.k == lString && l.s == string(m) }

// exactNumber is a number value: the leaf is a JSON number of the same value. A DynamoDB number
// ({"N": "42"}) is a string in the record's JSON, so a bare number never matches it, as in Lambda.
type exactNumber struct{ d decimal }

func (m exactNumber) match(l leaf) bool {
	if l.k != lNumber {
		return false
	}
	d, ok := parseDecimal(l.s)
	return ok && cmpDecimal(&d, &m.d) == 0
}

type exactBool bool

func (m exactBool) match(l leaf) bool { return l.k == lBool && l.b == bool(m) }

type exactNull struct{}

func (exactNull) match(l leaf) bool { return l.k == lNull }

// prefix is {"prefix": "x"}, or with fold {"prefix": {"equals-ignore-case": "x"}}.
type prefix struct {
	p    string
	fold bool
}

func (m prefix) match(l leaf) bool {
	if l.k != lString {
		return false
	}
	if m.fold {
		return hasPrefixFold(l.s, m.p)
	}
	return strings.HasPrefix(l.s, m.p)
}

// suffix is {"suffix": "x"}, or with fold {"suffix": {"equals-ignore-case": "x"}}.
type suffix struct {
	s    string
	fold bool
}

func (m suffix) match(l leaf) bool {
	if l.k != lString {
		return false
	}
	if m.fold {
		return hasSuffixFold(l.s, m.s)
	}
	return strings.HasSuffix(l.s, m.s)
}

// equalsIgnoreCase is {"equals-ignore-case": "x"}: Unicode simple case folding.
type equalsIgnoreCase string

func (m equalsIgnoreCase) match(l leaf) bool {
	return l.k == lString && strings.EqualFold(l.s, string(m))
}

// wildcard is {"wildcard": "a*b"}: segs are the literal parts between the stars, so a pattern
// without a star has one segment and "*" has two empty ones.
type wildcard struct{ segs []string }

func (m wildcard) match(l leaf) bool { return l.k == lString && m.matches(l.s) }

func (m wildcard) matches(s string) bool {
	if len(m.segs) == 1 {
		return s == m.segs[0]
	}
	first, last := m.segs[0], m.segs[len(m.segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	// With only '*' as a metacharacter, taking each middle segment at its leftmost place is
	// never worse than any other placement.
	s = s[len(first) : len(s)-len(last)]
	for _, seg := range m.segs[1 : len(m.segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
}

// numeric is {"numeric": [...]}: a range with optional bounds, "=" being both bounds inclusive.
// It applies to JSON numbers and, unlike Lambda, to DynamoDB numbers ({"N": "42"} and the
// elements of "NS"), compared exactly.
type numeric struct {
	lo, hi         decimal
	hasLo, hasHi   bool
	loIncl, hiIncl bool
}

func (m numeric) match(l leaf) bool {
	if l.k != lNumber && !(l.k == lString && l.num) {
		return false
	}
	d, ok := parseDecimal(l.s)
	if !ok {
		return false
	}
	if m.hasLo {
		c := cmpDecimal(&d, &m.lo)
		if c < 0 || c == 0 && !m.loIncl {
			return false
		}
	}
	if m.hasHi {
		c := cmpDecimal(&d, &m.hi)
		if c > 0 || c == 0 && !m.hiIncl {
			return false
		}
	}
	return true
}

// anythingBut is {"anything-but": ...} with values: every leaf matches except the listed strings
// and the JSON numbers equal to the listed numbers. A leaf of another type (a number against
// listed strings, a boolean, null) is not excluded, so it matches, as in Lambda.
type anythingBut struct {
	strs []string
	nums []decimal
}

func (m anythingBut) match(l leaf) bool {
	switch l.k {
	case lString:
		for _, s := range m.strs {
			if l.s == s {
				return false
			}
		}
	case lNumber:
		if len(m.nums) == 0 {
			return true
		}
		d, ok := parseDecimal(l.s)
		if !ok {
			return true
		}
		for i := range m.nums {
			if cmpDecimal(&d, &m.nums[i]) == 0 {
				return false
			}
		}
	}
	return true
}

// anythingButString is {"anything-but": {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": ...}}:
// every leaf matches except strings that one of the excluded matchers matches.
type anythingButString []matcher

func (m anythingButString) match(l leaf) bool {
	if l.k != lString {
		return true
	}
	for _, x := range m {
		if x.match(l) {
			return false
		}
	}
	return true
}

// cidr is {"cidr": "10.0.0.0/24"}: a string holding an IP address inside the prefix.
type cidr struct{ p netip.Prefix }

func (m cidr) match(l leaf) bool {
	if l.k != lString {
		return false
	}
	a, err := netip.ParseAddr(l.s)
	return err == nil && m.p.Contains(a.Unmap())
}

// hasPrefixFold is strings.HasPrefix under Unicode simple case folding, rune by rune, since a
// rune and its other case may differ in length.
func hasPrefixFold(s, p string) bool {
	for p != "" {
		if s == "" {
			return false
		}
		pr, pn := utf8.DecodeRuneInString(p)
		sr, sn := utf8.DecodeRuneInString(s)
		if !equalFoldRune(pr, sr) {
			return false
		}
		p, s = p[pn:], s[sn:]
	}
	return true
}

func hasSuffixFold(s, x string) bool {
	for x != "" {
		if s == "" {
			return false
		}
		xr, xn := utf8.DecodeLastRuneInString(x)
		sr, sn := utf8.DecodeLastRuneInString(s)
		if !equalFoldRune(xr, sr) {
			return false
		}
		x, s = x[:len(x)-xn], s[:len(s)-sn]
	}
	return true
}

func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}
