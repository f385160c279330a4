package checkpoint

import (
	"errors"
	"strings"
)

// ErrBadSequence is returned for a checkpoint that is not a sequence number (decimal digits).
var ErrBadSequence = errors.New("not a sequence number")

// ErrBackwards is returned for a checkpoint smaller than the lease's current one: a checkpoint never
// moves backwards.
var ErrBackwards = errors.New("checkpoint would move backwards")

// CompareSeq compares two DynamoDB Streams sequence numbers as the big integers they are (their
// decimal strings vary in length, so string order is wrong): -1 if a < b, 0 if a == b, +1 if a > b.
// Leading zeros are ignored. The empty string, meaning no checkpoint, is smaller than any sequence
// number. a and b are expected to be decimal digit strings; Held.Checkpoint checks that before
// comparing.
func CompareSeq(a, b string) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return strings.Compare(a, b)
}

// validSeq says whether s is a sequence number: one or more decimal digits.
func validSeq(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
