package shards

// PageLimit exposes pageLimit to the tests of package shards_test.
var PageLimit = pageLimit
