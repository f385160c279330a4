package filter

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	cases := []struct {
		name, s string
		ok      bool
	}{
		{"an integer parses", "42", true},
		{"a negative fraction parses", "-0.5", true},
		{"an exponent parses", "1.5E+3", true},
		{"a lower-case negative exponent parses", "25e-2", true},
		{"a leading dot parses", ".5", true},
		{"a trailing dot parses", "5.", true},
		{"a plus sign parses", "+7", true},
		{"zeros parse", "-000.000e5", true},
		{"38 digits parse", "99999999999999999999999999999999999999", true},
		{"an empty string does not parse", "", false},
		{"a sign alone does not parse", "-", false},
		{"a dot alone does not parse", ".", false},
		{"an exponent without digits does not parse", "1e", false},
		{"an exponent without a mantissa does not parse", "e5", false},
		{"letters do not parse", "12a", false},
		{"spaces do not parse", " 1", false},
		{"NaN does not parse", "NaN", false},
		{"two dots do not parse", "1.2.3", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := parseDecimal(tc.s); ok != tc.ok {
				t.Errorf("parseDecimal(%q) ok = %v, want %v", tc.s, ok, tc.ok)
			}
		})
	}
}

func TestCmpDecimal(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1", "1.0", 0},
		{"300", "3.0e2", 0},
		{"0", "-0.000", 0},
		{"0.1", "1e-1", 0},
		{"10", "9", 1},
		{"-10", "-9", -1},
		{"-1", "0", -1},
		{"0", "1e-130", -1},
		{"1e126", "99999999999999999999999999999999999999e88", 1},
		{"12345678901234567890123456789012345678", "12345678901234567890123456789012345677", 1},
		{"0.12345678901234567890123456789012345678", "0.12345678901234567890123456789012345679", -1},
		{"1.000000000000000000000000000000000000001", "1", 1},
		{"1e999999999999999999999", "1e999999999999999999998", 0}, // both beyond any real number: equal, not a crash
		{"5", "05.00", 0},
		{"120", "12e1", 0},
		{"0.5", ".5", 0},
	}
	for _, tc := range cases {
		a, okA := parseDecimal(tc.a)
		b, okB := parseDecimal(tc.b)
		if !okA || !okB {
			t.Fatalf("parseDecimal(%q, %q) failed", tc.a, tc.b)
		}
		if got := cmpDecimal(&a, &b); got != tc.want {
			t.Errorf("cmpDecimal(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := cmpDecimal(&b, &a); got != -tc.want {
			t.Errorf("cmpDecimal(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// TestCmpDecimalAgreesWithBigRat compares random numbers shaped like DynamoDB's (up to 38 digits,
// exponents, leading and trailing zeros) with math/big's exact rationals.
func TestCmpDecimalAgreesWithBigRat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a, b := randomNumber(rng), randomNumber(rng)
		if rng.IntN(4) == 0 {
			b = a // equal values, often written alike
		}
		checkAgainstBigRat(t, a, b)
	}
}

func checkAgainstBigRat(t *testing.T, a, b string) {
	t.Helper()
	da, okA := parseDecimal(a)
	db, okB := parseDecimal(b)
	ra, okRA := new(big.Rat).SetString(a)
	rb, okRB := new(big.Rat).SetString(b)
	if !okA || !okB || !okRA || !okRB {
		t.Fatalf("parse %q, %q: decimal %v %v, big.Rat %v %v", a, b, okA, okB, okRA, okRB)
	}
	if got, want := cmpDecimal(&da, &db), ra.Cmp(rb); got != want {
		t.Errorf("cmpDecimal(%s, %s) = %d, want %d (math/big)", a, b, got, want)
	}
}

func randomNumber(rng *rand.Rand) string {
	var sb strings.Builder
	if rng.IntN(2) == 0 {
		sb.WriteByte('-')
	}
	digits := func(n int) {
		for range n {
			sb.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	sb.WriteString(strings.Repeat("0", rng.IntN(3)))
	digits(1 + rng.IntN(20))
	if rng.IntN(2) == 0 {
		sb.WriteByte('.')
		digits(1 + rng.IntN(18))
		sb.WriteString(strings.Repeat("0", rng.IntN(3)))
	}
	if rng.IntN(3) == 0 {
		sb.WriteString("e" + strconv.Itoa(rng.IntN(60)-30))
	}
	return sb.String()
}
