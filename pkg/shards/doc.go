// Package shards walks a DynamoDB stream: it lists the stream's shards (DescribeStream, paginated),
// orders them by lineage so that a child never starts before its parents are finished, and reads one
// shard with GetRecords at a steady cadence, renewing expired iterators and recovering from trimmed
// positions.
//
// It knows nothing of sinks, batches or leases: a Reader turns one shard into a sequence of Pages,
// and Lineage decides which shards may be read.
package shards
