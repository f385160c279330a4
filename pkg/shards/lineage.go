package shards

// Lineage answers which shards may be read, given what is finished. Parents go before children: a
// child is ready only when its parent is finished. The answer is a pure function of its inputs, so
// it is table-tested and every worker reaches the same decision from the same lease table.
type Lineage struct {
	// Finished reports a shard whose every record was delivered (its lease says so).
	Finished func(id string) bool
	// Tracked reports a shard that has a lease, finished or not.
	Tracked func(id string) bool
}

// Ready returns the shards of all that are not finished and whose parent is done, in the order given.
//
// A parent counts as done when it is finished, or when DescribeStream no longer lists it and no lease
// tracks it: it was trimmed away (or never reached, e.g. before a LATEST start). Without that rule the
// children of a trimmed parent would wait forever. A parent that a lease tracks but the listing lacks
// stays unfinished: listings can be momentarily inconsistent, and the parent's reader learns for sure
// (ResourceNotFound or the shard's end) and finishes it.
func (l Lineage) Ready(all []Shard) []Shard {
	listed := make(map[string]bool, len(all))
	for _, s := range all {
		listed[s.ID] = true
	}
	var ready []Shard
	for _, s := range all {
		if l.Finished(s.ID) {
			continue
		}
		if p := s.ParentID; p != "" && !l.Finished(p) && (listed[p] || l.Tracked(p)) {
			continue
		}
		ready = append(ready, s)
	}
	return ready
}
