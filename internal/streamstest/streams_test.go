package streamstest_test

import (
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	st "github.com/poller-dev/poller/internal/streamstest"
)

func TestStreams(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"DescribeStream pages 2,500 shards 100 at a time, in ID order, ending with an empty page", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("Big", st.KeysOnly)
			ids := s.OpenShards(2500)
			begin := time.Now()
			shards, pages := e.listAll(t, s, nil)
			t.Logf("listed %d shards in %d pages in %v", len(shards), pages, time.Since(begin))
			if pages != 26 {
				t.Errorf("DescribeStream pages = %d, want 26 (25 full pages, then an empty one)", pages)
			}
			got := make([]string, len(shards))
			for i, sh := range shards {
				got[i] = aws.ToString(sh.ShardId)
			}
			if !slices.Equal(got, ids) {
				t.Errorf("listed shard IDs differ from opened ones (%d listed, %d opened)", len(got), len(ids))
			}
			if !slices.IsSorted(got) {
				t.Errorf("shard IDs are not in ascending order")
			}
		}},
		{"DescribeStream with Limit 101 is a ValidationException, with Limit 7 a page of 7", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			s.OpenShards(10)
			_, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.ARN()), Limit: aws.Int32(101)})
			if errorCode(err) != "ValidationException" {
				t.Errorf("DescribeStream(Limit 101) error = %v, want ValidationException", err)
			}
			out, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.ARN()), Limit: aws.Int32(7)})
			if err != nil || len(out.StreamDescription.Shards) != 7 || out.StreamDescription.LastEvaluatedShardId == nil {
				t.Errorf("DescribeStream(Limit 7) = %d shards, LastEvaluatedShardId %v, error %v; want 7 and set", len(out.StreamDescription.Shards), out.StreamDescription.LastEvaluatedShardId, err)
			}
		}},
		{"DescribeStream of an unknown stream is a ResourceNotFoundException", func(t *testing.T, e *env) {
			_, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/X/stream/2020-01-01T00:00:00.000")})
			var nf *types.ResourceNotFoundException
			if !errorsAs(err, &nf) {
				t.Errorf("DescribeStream(unknown) error = %v, want *types.ResourceNotFoundException", err)
			}
		}},
		{"DescribeStream describes the stream: label, status, view type, table, key schema", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("GameScores", st.NewAndOldImages, st.WithKeySchema("UserId", "GameTitle"))
			out, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.ARN())})
			if err != nil {
				t.Fatalf("DescribeStream() error = %v", err)
			}
			d := out.StreamDescription
			if aws.ToString(d.StreamLabel) != s.Label() || d.StreamStatus != types.StreamStatusEnabled || d.StreamViewType != types.StreamViewTypeNewAndOldImages ||
				aws.ToString(d.TableName) != "GameScores" || len(d.KeySchema) != 2 || aws.ToString(d.KeySchema[1].AttributeName) != "GameTitle" ||
				d.KeySchema[1].KeyType != types.KeyTypeRange || !d.CreationRequestDateTime.Equal(t0) || len(d.Shards) != 0 {
				t.Errorf("DescribeStream() = %+v, want the stream as created, with no shards", d)
			}
		}},
		{"a split closes the parent at its last record and opens two children naming it; CHILD_SHARDS lists just them", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			roots := s.OpenShards(3)
			seqs := s.Put(roots[1], st.Inserts(5)...)
			a, b := s.Split(roots[1])
			shards, _ := e.listAll(t, s, nil)
			byID := map[string]types.Shard{}
			for _, sh := range shards {
				byID[aws.ToString(sh.ShardId)] = sh
			}
			if len(shards) != 5 {
				t.Fatalf("DescribeStream() = %d shards, want 5", len(shards))
			}
			if end := byID[roots[1]].SequenceNumberRange.EndingSequenceNumber; aws.ToString(end) != seqs[4] {
				t.Errorf("parent EndingSequenceNumber = %v, want its last record's %s", aws.ToString(end), seqs[4])
			}
			for _, child := range []string{a, b} {
				sh := byID[child]
				if aws.ToString(sh.ParentShardId) != roots[1] || sh.SequenceNumberRange.EndingSequenceNumber != nil {
					t.Errorf("child %s = parent %v, end %v; want parent %s and open", child, aws.ToString(sh.ParentShardId), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber), roots[1])
				}
				if bigOf(t, aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber)).Cmp(bigOf(t, seqs[4])) <= 0 {
					t.Errorf("child starts at %s, not after the parent's last record %s", aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber), seqs[4])
				}
			}
			kids, _ := e.listAll(t, s, &types.ShardFilter{Type: types.ShardFilterTypeChildShards, ShardId: aws.String(roots[1])})
			if len(kids) != 2 || aws.ToString(kids[0].ShardId) != a || aws.ToString(kids[1].ShardId) != b {
				t.Errorf("DescribeStream(CHILD_SHARDS of parent) = %v, want [%s %s]", shardIDs(kids), a, b)
			}
			none, _ := e.listAll(t, s, &types.ShardFilter{Type: types.ShardFilterTypeChildShards, ShardId: aws.String(roots[0])})
			if len(none) != 0 {
				t.Errorf("DescribeStream(CHILD_SHARDS of a shard without children) = %v, want none", shardIDs(none))
			}
		}},
		{"a rollover opens one child; reading the parent to its end returns no NextShardIterator", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			root := s.OpenShard("")
			want := s.Put(root, st.Inserts(3)...)
			child := s.Rollover(root)
			kids, _ := e.listAll(t, s, &types.ShardFilter{Type: types.ShardFilterTypeChildShards, ShardId: aws.String(root)})
			if len(kids) != 1 || aws.ToString(kids[0].ShardId) != child {
				t.Errorf("children of rolled-over shard = %v, want [%s]", shardIDs(kids), child)
			}
			got, next := e.readAll(t, e.iter(t, s, root, types.ShardIteratorTypeTrimHorizon, ""))
			if !slices.Equal(got, want) || next != "" {
				t.Errorf("read parent = %v, next %q; want %v and no next iterator", got, next, want)
			}
		}},
		{"an open shard always gives a NextShardIterator, also on empty pages, and later records show up through it", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			got, next := e.readAll(t, e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, ""))
			if len(got) != 0 || next == "" {
				t.Fatalf("read empty open shard = %v, next %q; want no records and a next iterator", got, next)
			}
			want := s.Put(sh, st.Inserts(2)...)
			got, next = e.readAll(t, next)
			if !slices.Equal(got, want) || next == "" {
				t.Errorf("read after Put = %v, next %q; want %v and a next iterator", got, next, want)
			}
			s.CloseShard(sh)
			got, next = e.readAll(t, next)
			if len(got) != 0 || next != "" {
				t.Errorf("read after CloseShard = %v, next %q; want nothing and no next iterator", got, next)
			}
		}},
		{"LATEST skips existing records; AT_ and AFTER_SEQUENCE_NUMBER start at and after a record", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			seqs := s.Put(sh, st.Inserts(5)...)
			latest := e.iter(t, s, sh, types.ShardIteratorTypeLatest, "")
			more := s.Put(sh, st.Inserts(2)...)
			if got, _ := e.readAll(t, latest); !slices.Equal(got, more) {
				t.Errorf("read from LATEST = %v, want %v", got, more)
			}
			all := append(seqs, more...)
			if got, _ := e.readAll(t, e.iter(t, s, sh, types.ShardIteratorTypeAtSequenceNumber, seqs[2])); !slices.Equal(got, all[2:]) {
				t.Errorf("read from AT_SEQUENCE_NUMBER %s = %v, want %v", seqs[2], got, all[2:])
			}
			if got, _ := e.readAll(t, e.iter(t, s, sh, types.ShardIteratorTypeAfterSequenceNumber, seqs[2])); !slices.Equal(got, all[3:]) {
				t.Errorf("read from AFTER_SEQUENCE_NUMBER %s = %v, want %v", seqs[2], got, all[3:])
			}
			for _, bad := range []string{"12x", "1"} {
				_, err := e.client.GetShardIterator(e.ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(sh),
					ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(bad)})
				if errorCode(err) != "ValidationException" {
					t.Errorf("GetShardIterator(AT_SEQUENCE_NUMBER %q) error = %v, want ValidationException", bad, err)
				}
			}
		}},
		{"AT_TIMESTAMP starts at the first record created at or after the time", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			s.Put(sh, st.Inserts(2)...)
			e.clock.Advance(time.Minute)
			later := s.Put(sh, st.Inserts(2)...)
			out, err := e.client.GetShardIterator(e.ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(sh),
				ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(t0.Add(30 * time.Second))})
			if err != nil {
				t.Fatalf("GetShardIterator(AT_TIMESTAMP) error = %v", err)
			}
			if got, _ := e.readAll(t, aws.ToString(out.ShardIterator)); !slices.Equal(got, later) {
				t.Errorf("read from AT_TIMESTAMP = %v, want %v", got, later)
			}
		}},
		{"sequence numbers grow in value and in length, so comparing them as strings goes wrong", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			seqs := s.Put(sh, st.Inserts(50)...)
			child := s.Rollover(sh)
			seqs = append(seqs, s.Put(child, st.Inserts(3)...)...)
			stringOrderBroken := false
			for i := 1; i < len(seqs); i++ {
				if bigOf(t, seqs[i]).Cmp(bigOf(t, seqs[i-1])) <= 0 {
					t.Errorf("sequence %s follows %s", seqs[i], seqs[i-1])
				}
				stringOrderBroken = stringOrderBroken || seqs[i] < seqs[i-1]
			}
			if len(seqs[0]) != 21 || len(seqs[1]) != 22 || !stringOrderBroken {
				t.Errorf("sequence numbers %s, %s, ...: want 21 then 22 digits, and string order broken", seqs[0], seqs[1])
			}
		}},
		{"an iterator works until the injected clock reaches its TTL, then is expired", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			s.Put(sh, st.Inserts(1)...)
			it := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")
			e.clock.Advance(15*time.Minute - time.Nanosecond)
			if _, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)}); err != nil {
				t.Errorf("GetRecords() just before expiry error = %v, want nil", err)
			}
			e.clock.Advance(time.Nanosecond)
			_, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			var expired *types.ExpiredIteratorException
			if !errorsAs(err, &expired) {
				t.Errorf("GetRecords() at expiry error = %v, want *types.ExpiredIteratorException", err)
			}
		}},
		{"GetRecords returns 1000 records by default, the Limit when given, and rejects Limit 1001", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			s.Put(sh, st.Inserts(2500)...)
			it := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")
			out, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			if err != nil || len(out.Records) != 1000 {
				t.Errorf("GetRecords() = %d records, error %v; want 1000", len(out.Records), err)
			}
			out, err = e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(10)})
			if err != nil || len(out.Records) != 10 {
				t.Errorf("GetRecords(Limit 10) = %d records, error %v; want 10", len(out.Records), err)
			}
			_, err = e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(1001)})
			if errorCode(err) != "ValidationException" {
				t.Errorf("GetRecords(Limit 1001) error = %v, want ValidationException", err)
			}
		}},
		{"GetRecords stops a page at 1 MB", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.NewImageOnly)
			sh := s.OpenShard("")
			big := make([]byte, 100<<10)
			recs := make([]st.Record, 25)
			for i := range recs {
				recs[i] = st.Insert(st.Item{"pk": st.N(i)}, st.Item{"pk": st.N(i), "blob": st.B(big)})
			}
			s.Put(sh, recs...)
			s.CloseShard(sh)
			out, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, ""))})
			if err != nil || len(out.Records) == 0 || len(out.Records) >= 10 || out.NextShardIterator == nil {
				t.Errorf("GetRecords() of 25 records of 100 KB = %d records, next %v, error %v; want fewer than 10 and a next iterator", len(out.Records), out.NextShardIterator != nil, err)
			}
		}},
		{"after Trim, TRIM_HORIZON starts after the trimmed records and older positions are TrimmedDataAccessException", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			seqs := s.Put(sh, st.Inserts(5)...)
			old := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")
			s.Trim(sh, 2)
			if got, _ := e.readAll(t, e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")); !slices.Equal(got, seqs[2:]) {
				t.Errorf("read from TRIM_HORIZON after Trim = %v, want %v", got, seqs[2:])
			}
			var trimmed *types.TrimmedDataAccessException
			if _, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(old)}); !errorsAs(err, &trimmed) {
				t.Errorf("GetRecords(iterator into trimmed records) error = %v, want *types.TrimmedDataAccessException", err)
			}
			for _, c := range []struct {
				typ     types.ShardIteratorType
				seq     string
				trimmed bool
			}{
				{types.ShardIteratorTypeAtSequenceNumber, seqs[1], true},
				{types.ShardIteratorTypeAfterSequenceNumber, seqs[0], true},
				{types.ShardIteratorTypeAfterSequenceNumber, seqs[1], false},
				{types.ShardIteratorTypeAtSequenceNumber, seqs[2], false},
			} {
				_, err := e.client.GetShardIterator(e.ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(sh),
					ShardIteratorType: c.typ, SequenceNumber: aws.String(c.seq)})
				if got := errorsAs(err, &trimmed); got != c.trimmed || (!c.trimmed && err != nil) {
					t.Errorf("GetShardIterator(%s %s) error = %v, want trimmed %v", c.typ, c.seq, err, c.trimmed)
				}
			}
		}},
		{"a hidden parent leaves its child naming a shard the listing lacks, and cannot be read anew", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			root := s.OpenShard("")
			child := s.Rollover(root)
			orphan := s.OpenShard("shardId-00000000000000000001-deadbeef")
			s.Hide(root)
			shards, _ := e.listAll(t, s, nil)
			if ids := shardIDs(shards); !slices.Equal(ids, []string{child, orphan}) {
				t.Errorf("DescribeStream() = %v, want [%s %s]", ids, child, orphan)
			}
			_, err := e.client.GetShardIterator(e.ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(root), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			var nf *types.ResourceNotFoundException
			if !errorsAs(err, &nf) {
				t.Errorf("GetShardIterator(hidden shard) error = %v, want *types.ResourceNotFoundException", err)
			}
			s.Show(root)
			if shards, _ := e.listAll(t, s, nil); len(shards) != 3 {
				t.Errorf("DescribeStream() after Show = %v, want 3 shards", shardIDs(shards))
			}
		}},
		{"a closed shard may have no children yet, and an open child may hang under an open parent", func(t *testing.T, e *env) {
			s := e.srv.CreateStream("T", st.KeysOnly)
			a, b := s.OpenShard(""), s.OpenShard("")
			s.CloseShard(a)
			bChild := s.OpenShard(b)
			shards, _ := e.listAll(t, s, nil)
			if len(shards) != 3 || shards[0].SequenceNumberRange.EndingSequenceNumber == nil ||
				shards[1].SequenceNumberRange.EndingSequenceNumber != nil || aws.ToString(shards[2].ParentShardId) != b {
				t.Errorf("DescribeStream() = %v, want closed %s without children, open %s with open child %s", shardIDs(shards), a, b, bChild)
			}
		}},
		{"ListStreams lists streams by table, pages, and a stream created again disables the old one", func(t *testing.T, e *env) {
			first := e.srv.CreateStream("A", st.KeysOnly)
			sh := first.OpenShard("")
			e.srv.CreateStream("B", st.KeysOnly)
			e.clock.Advance(time.Second)
			second := e.srv.CreateStream("A", st.NewImageOnly)
			out, err := e.client.ListStreams(e.ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String("A")})
			if err != nil || len(out.Streams) != 2 || aws.ToString(out.Streams[1].StreamArn) != second.ARN() {
				t.Fatalf("ListStreams(A) = %+v, error %v; want 2 streams ending with %s", out, err, second.ARN())
			}
			out, err = e.client.ListStreams(e.ctx, &dynamodbstreams.ListStreamsInput{Limit: aws.Int32(2)})
			if err != nil || len(out.Streams) != 2 || aws.ToString(out.LastEvaluatedStreamArn) == "" {
				t.Fatalf("ListStreams(Limit 2) = %+v, error %v; want 2 streams and LastEvaluatedStreamArn", out, err)
			}
			out, err = e.client.ListStreams(e.ctx, &dynamodbstreams.ListStreamsInput{Limit: aws.Int32(2), ExclusiveStartStreamArn: out.LastEvaluatedStreamArn})
			if err != nil || len(out.Streams) != 1 || out.LastEvaluatedStreamArn != nil {
				t.Fatalf("ListStreams(second page) = %+v, error %v; want 1 stream, the last", out, err)
			}
			d, err := e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(first.ARN())})
			if err != nil || d.StreamDescription.StreamStatus != types.StreamStatusDisabled || d.StreamDescription.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
				t.Errorf("DescribeStream(replaced stream) = %+v, error %v; want DISABLED with shard %s closed", d, err, sh)
			}
		}},
		{"an iterator from another server, or garbage, is a ValidationException", func(t *testing.T, e *env) {
			other := newEnv(t, st.Options{})
			s := other.srv.CreateStream("T", st.KeysOnly)
			foreign := other.iter(t, s, s.OpenShard(""), types.ShardIteratorTypeTrimHorizon, "")
			for _, it := range []string{foreign, "garbage"} {
				_, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
				if errorCode(err) != "ValidationException" {
					t.Errorf("GetRecords(%.12s...) error = %v, want ValidationException", it, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newEnv(t, st.Options{}))
		})
	}
}

func bigOf(t *testing.T, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("sequence number %q is not decimal", s)
	}
	return n
}

func shardIDs(shards []types.Shard) []string {
	ids := make([]string, len(shards))
	for i, sh := range shards {
		ids[i] = aws.ToString(sh.ShardId)
	}
	return ids
}

// BenchmarkGetRecords drains a shard of b.N records with one reader, pages of 1,000.
func BenchmarkGetRecords(b *testing.B) {
	srv := st.New(b, st.Options{})
	s := srv.CreateStream("T", st.NewAndOldImages)
	sh := s.OpenShard("")
	s.Put(sh, st.Inserts(b.N)...)
	s.CloseShard(sh)
	c := srv.Client()
	ctx := b.Context()
	b.ResetTimer()
	it, err := c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(sh), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for next := it.ShardIterator; next != nil; {
		out, err := c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: next})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out.Records)
		next = out.NextShardIterator
	}
	if n != b.N {
		b.Fatalf("read %d records, want %d", n, b.N)
	}
}

// BenchmarkPut appends records one at a time.
func BenchmarkPut(b *testing.B) {
	srv := st.New(b, st.Options{})
	s := srv.CreateStream("T", st.NewAndOldImages)
	sh := s.OpenShard("")
	recs := st.Inserts(1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Put(sh, recs[i%1000])
	}
}
