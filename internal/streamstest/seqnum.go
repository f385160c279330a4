package streamstest

import "math/big"

// Sequence numbers are decimal strings of 21 to 40 digits, as the real API documents, and they grow
// in length on purpose: a shard of lineage depth g (0 for a root) starts at 10^(21+g) - 2, so its
// first record has 21+g digits and its second one more. A consumer that compares sequence numbers as
// strings, or that assumes a fixed width, goes wrong within two records of every shard. Numbers
// increase within a shard by a varying step, so nobody can assume +1 either, and a child's numbers
// exceed its parent's. Sibling shards (a split's two children, roots) share ranges, as parallel
// shards of the real service overlap.
const (
	minSeqDigits = 21
	maxSeqDigits = 40
)

// firstSequence returns the StartingSequenceNumber of a shard of lineage depth gen whose numbers
// must exceed after (nil for a root).
func firstSequence(gen int, after *big.Int) *big.Int {
	if digits := minSeqDigits + gen; digits < maxSeqDigits {
		s := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)
		s.Sub(s, big.NewInt(2))
		if after == nil || s.Cmp(after) > 0 {
			return s
		}
	}
	// Deep lineages stop growing in length (40 digits at most) and just continue after the parent.
	return new(big.Int).Add(after, big.NewInt(1000))
}

// sequenceStep is the gap after the i-th record of a shard (i from 0): at least 2, so that the second
// record of a shard that starts at 10^k - 2 has k+1 digits, and varying.
func sequenceStep(i int) int64 {
	return 2 + int64(i%1009*7919%1009)
}

// parseSequence reads a sequence number: decimal digits only.
func parseSequence(s string) (*big.Int, bool) {
	if s == "" || len(s) > maxSeqDigits+8 {
		return nil, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	return new(big.Int).SetString(s, 10)
}
