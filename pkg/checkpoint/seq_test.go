package checkpoint

import "testing"

func TestCompareSeq(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal numbers are equal", "100000000000000000001", "100000000000000000001", 0},
		{"a longer number is larger though it sorts first as a string", "1000000000000000000000", "999999999999999999999", 1},
		{"a shorter number is smaller though it sorts last as a string", "9", "10", -1},
		{"leading zeros are ignored", "000000000000000000042", "42", 0},
		{"numbers of equal length compare digit by digit", "123456789012345678901", "123456789012345678902", -1},
		{"no checkpoint is smaller than any sequence number", "", "0", -1},
		{"any sequence number is larger than no checkpoint", "1", "", 1},
		{"no checkpoint equals no checkpoint", "", "", 0},
		{"28-digit numbers compare", "9999999999999999999999999999", "10000000000000000000000000000", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompareSeq(tt.a, tt.b); got != tt.want {
				t.Fatalf("CompareSeq(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := CompareSeq(tt.b, tt.a); got != -tt.want {
				t.Fatalf("CompareSeq(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}
