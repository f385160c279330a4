package filter

import "strings"

// decimal is an exact decimal number, parsed from text without allocating: it refers to the
// digits of the text it came from. Its value is 0.d₁d₂…dₙ × 10^exp, where the significant digits
// d₁…dₙ are hi followed by lo, d₁ and dₙ are not zero, and zero is flagged apart. hi and lo exist
// because the digits of "12.5" are not contiguous in the text; keeping two substrings avoids
// copying them.
//
// DynamoDB numbers have up to 38 significant digits and exponents from -130 to +125, beyond what
// float64 holds exactly; comparing decimals digit by digit is exact at any size.
type decimal struct {
	neg  bool
	zero bool
	exp  int64
	hi   string
	lo   string
}

// maxExponent bounds the exponent read from text, so that huge exponents cannot overflow int64.
// Any number whose exponent reaches it is beyond every number of realistic length anyway.
const maxExponent = 1 << 50

// parseDecimal reads a decimal number: an optional sign, digits with an optional fraction
// (at least one digit in all), and an optional exponent, as in "42", "-0.5", "1.5E+3" or ".5".
// It accepts every JSON number and every number DynamoDB stores.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[start:i]
	}
	if intPart == "" && frac == "" {
		return decimal{}, false
	}
	var e int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		start = i
		for i < len(s) && isDigit(s[i]) {
			if e < maxExponent {
				e = e*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == start {
			return decimal{}, false
		}
		if eneg {
			e = -e
		}
	}
	if i != len(s) {
		return decimal{}, false
	}

	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart != "" {
		d.hi, d.lo = intPart, frac
		if frac == "" {
			d.hi = strings.TrimRight(intPart, "0")
		}
		d.exp = int64(len(intPart)) + e
		return d, true
	}
	sig := strings.TrimLeft(frac, "0")
	if sig == "" {
		return decimal{zero: true}, true
	}
	d.lo = sig
	d.exp = e - int64(len(frac)-len(sig))
	return d, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func (d *decimal) digits() int { return len(d.hi) + len(d.lo) }

func (d *decimal) digit(i int) byte {
	if i < len(d.hi) {
		return d.hi[i]
	}
	return d.lo[i-len(d.hi)]
}

// cmpDecimal returns -1, 0 or +1 as a is less than, equal to or greater than b.
func cmpDecimal(a, b *decimal) int {
	switch {
	case a.zero && b.zero:
		return 0
	case a.zero:
		if b.neg {
			return 1
		}
		return -1
	case b.zero:
		if a.neg {
			return -1
		}
		return 1
	case a.neg != b.neg:
		if a.neg {
			return -1
		}
		return 1
	}
	c := cmpMagnitude(a, b)
	if a.neg {
		return -c
	}
	return c
}

func cmpMagnitude(a, b *decimal) int {
	if a.exp != b.exp {
		if a.exp > b.exp {
			return 1
		}
		return -1
	}
	na, nb := a.digits(), b.digits()
	for i := range min(na, nb) {
		da, db := a.digit(i), b.digit(i)
		if da != db {
			if da > db {
				return 1
			}
			return -1
		}
	}
	// Trailing zeros are stripped, so the longer one has a non-zero digit more.
	switch {
	case na > nb:
		return 1
	case na < nb:
		return -1
	}
	return 0
}
