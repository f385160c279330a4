// Package shards walks a DynamoDB stream: it lists the stream's shards (DescribeStream, paginated),
// orders them by lineage so that a child never starts before its parents are finished, and reads one
// shard with GetRecords at a steady cadence, renewing expired iterators and recovering from trimmed
// positions.
//
// It is where a pipeline's data flow begins. The pipeline (pkg/pipeline) lists the shards with
// Describe (and Children, when a shard ends), asks Lineage which of them may be read, and runs a
// Reader for each one whose lease it holds; the Reader's Pages go to the shard's dispatcher, which
// batches the records for the sink (pkg/sinks) and checkpoints what was delivered.
//
// It knows nothing of sinks, batches or leases: a Reader turns one shard into a sequence of Pages
// and reports what it did to its Hooks (metrics), and Lineage decides which shards may be read.
package shards
