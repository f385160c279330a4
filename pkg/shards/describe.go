package shards

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// DescribeAPI is the part of the DynamoDB Streams API that Describe and Children use;
// *dynamodbstreams.Client satisfies it.
type DescribeAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
}

// Shard is one shard as DescribeStream lists it.
type Shard struct {
	// ID is the shard's ID, e.g. "shardId-00000001536019433128-8f4c4a5d".
	ID string
	// ParentID is the parent shard's ID, or "". The parent may no longer be listed (trimmed).
	ParentID string
	// StartSeq and EndSeq are the shard's sequence number range; EndSeq is "" while the shard is open.
	StartSeq string
	EndSeq   string // "" while open
}

// Closed reports whether the shard takes no more records.
func (s Shard) Closed() bool { return s.EndSeq != "" }

// maxDescribePages caps one listing: 100 shards a page, so 100,000 shards, far beyond any stream
// (a table has at most a few thousand partitions). A listing that does not end by then is a bug or
// a service fault, reported as an error rather than looped on.
const maxDescribePages = 1000

// Stream describes a stream.
type Stream struct {
	// ARN is the stream's ARN.
	ARN string
	// Status is ENABLING, ENABLED, DISABLING or DISABLED.
	Status types.StreamStatus
	// HashKey is the table's partition key attribute name, from the stream's key schema.
	HashKey string
	// Shards are every shard DescribeStream lists, in its order.
	Shards []Shard
}

// Describe lists every shard of the stream, following LastEvaluatedShardId page by page. It fails
// on a repeated cursor and after maxDescribePages pages instead of looping.
func Describe(ctx context.Context, api DescribeAPI, streamARN string) (Stream, error) {
	return describe(ctx, api, streamARN, nil)
}

// Children lists the children of one shard (ShardFilter CHILD_SHARDS), so that a finished shard's
// children start at once rather than at the next periodic refresh.
func Children(ctx context.Context, api DescribeAPI, streamARN, parentID string) ([]Shard, error) {
	st, err := describe(ctx, api, streamARN, &types.ShardFilter{Type: types.ShardFilterTypeChildShards, ShardId: aws.String(parentID)})
	if err != nil {
		return nil, err
	}
	// Tolerate an endpoint that ignores the filter: keep only the children.
	kids := st.Shards[:0]
	for _, s := range st.Shards {
		if s.ParentID == parentID {
			kids = append(kids, s)
		}
	}
	return kids, nil
}

func describe(ctx context.Context, api DescribeAPI, streamARN string, filter *types.ShardFilter) (Stream, error) {
	st := Stream{ARN: streamARN}
	seen := map[string]bool{}
	index := map[string]int{} // a shard listed twice (pages overlapping) is kept once
	var start *string
	for page := 0; ; page++ {
		if page == maxDescribePages {
			return st, fmt.Errorf("describe stream %s: more than %d pages", streamARN, maxDescribePages)
		}
		out, err := api.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{
			StreamArn:             aws.String(streamARN),
			ExclusiveStartShardId: start,
			Limit:                 aws.Int32(100),
			ShardFilter:           filter,
		})
		if err != nil {
			return st, fmt.Errorf("describe stream %s (page %d): %w", streamARN, page+1, err)
		}
		d := out.StreamDescription
		if d == nil {
			return st, fmt.Errorf("describe stream %s (page %d): no stream description in the answer", streamARN, page+1)
		}
		st.Status = d.StreamStatus
		for _, k := range d.KeySchema {
			if k.KeyType == "HASH" {
				st.HashKey = aws.ToString(k.AttributeName)
			}
		}
		for _, s := range d.Shards {
			sh := Shard{ID: aws.ToString(s.ShardId), ParentID: aws.ToString(s.ParentShardId)}
			if r := s.SequenceNumberRange; r != nil {
				sh.StartSeq, sh.EndSeq = aws.ToString(r.StartingSequenceNumber), aws.ToString(r.EndingSequenceNumber)
			}
			if sh.ID == "" {
				continue
			}
			if i, dup := index[sh.ID]; dup {
				st.Shards[i] = sh
				continue
			}
			index[sh.ID] = len(st.Shards)
			st.Shards = append(st.Shards, sh)
		}
		next := aws.ToString(d.LastEvaluatedShardId)
		if next == "" {
			return st, nil
		}
		if seen[next] {
			return st, fmt.Errorf("describe stream %s: LastEvaluatedShardId %s repeated on page %d", streamARN, next, page+1)
		}
		seen[next] = true
		start = aws.String(next)
	}
}
