// Package streamstest is a DynamoDB Streams endpoint for tests. The real aws-sdk-go-v2
// dynamodbstreams client talks to it over HTTP in the service's wire protocol (awsJson1_0), so the
// code under test runs unchanged, while the test shapes what DynamoDB Local cannot: many shards,
// splits and rollovers, trimming, iterator expiry, throttling and other errors, and inconsistent
// lineage.
//
//	clock := streamstest.NewManualClock(time.Now())
//	srv := streamstest.New(t, streamstest.Options{Upstream: testenv.DynamoDBLocal(t), Clock: clock})
//	st := srv.CreateStream("GameScores", streamstest.NewAndOldImages, streamstest.WithKeySchema("UserId"))
//	root := st.OpenShard("")
//	st.Put(root, streamstest.Insert(streamstest.Item{"UserId": streamstest.S("u1")},
//		streamstest.Item{"UserId": streamstest.S("u1"), "TopScore": streamstest.N(42)}))
//	left, right := st.Split(root)
//	srv.Fault(streamstest.OpGetRecords, streamstest.Times(2, streamstest.Throttle()))
//	// point the code under test at srv.URL (aws.endpoint_url), then assert, e.g. on srv.Calls(streamstest.OpGetRecords);
//	// a test that calls the API itself uses srv.Client().
//
// What it serves: DescribeStream (Limit 1..100, ExclusiveStartShardId, ShardFilter CHILD_SHARDS;
// a full page always carries LastEvaluatedShardId, so callers must page until it is absent),
// GetShardIterator (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP),
// GetRecords (Limit 1..1000, 1 MB pages; no NextShardIterator in the answer that reaches the end of a
// closed shard) and ListStreams. Errors come in the service's shape, so the SDK returns its typed
// errors (*types.ExpiredIteratorException, ...); note that the SDK's default retryer retries
// LimitExceededException and InternalServerError on its own.
//
// Requests for DynamoDB itself (X-Amz-Target DynamoDB_20120810.*) go, unchanged, to
// Options.Upstream, so one endpoint_url serves a lease table in DynamoDB Local and streams from
// here; DescribeTable of a table that has a stream here is answered here, with its LatestStreamArn.
// Fault hooks (Server.Fault) see every operation, the forwarded ones too, so a test can also
// throttle lease writes.
//
// Sequence numbers are decimal strings of 21 to 40 digits whose length grows within every shard
// (see seqnum.go): consumers that compare them as strings fail fast. Shard iterators are opaque
// and stateless; they expire after Options.IteratorTTL on Options.Clock.
package streamstest
