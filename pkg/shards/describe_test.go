package shards_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/pkg/shards"
)

func shardIDs(ss []shards.Shard) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

// TestDescribe lists streams the real SDK client reads from the Streams test endpoint.
func TestDescribe(t *testing.T) {
	type env struct {
		srv    *streamstest.Server
		client *dynamodbstreams.Client
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"2,500 shards are all listed once, in order, in at most 26 calls", func(t *testing.T, e env) {
			st := e.srv.CreateStream("Big", streamstest.KeysOnly)
			ids := st.OpenShards(2500)
			got, err := shards.Describe(t.Context(), e.client, st.ARN())
			if err != nil {
				t.Fatalf("Describe() error = %v", err)
			}
			if !slices.Equal(shardIDs(got.Shards), ids) {
				t.Errorf("Describe() listed %d shards, want the %d opened, each once, in order", len(got.Shards), len(ids))
			}
			if n := e.srv.Calls(streamstest.OpDescribeStream); n > 26 {
				t.Errorf("DescribeStream calls = %d, want at most 26 (100 shards a page)", n)
			}
		}},
		{"a stream without shards lists none, in one call", func(t *testing.T, e env) {
			st := e.srv.CreateStream("Empty", streamstest.KeysOnly)
			got, err := shards.Describe(t.Context(), e.client, st.ARN())
			if err != nil || len(got.Shards) != 0 || got.ARN != st.ARN() {
				t.Errorf("Describe() = %+v, %v; want the stream with no shards", got, err)
			}
			if n := e.srv.Calls(streamstest.OpDescribeStream); n != 1 {
				t.Errorf("DescribeStream calls = %d, want 1", n)
			}
		}},
		{"the key schema's HASH attribute is the stream's HashKey, even when a range key follows", func(t *testing.T, e env) {
			st := e.srv.CreateStream("GameScores", streamstest.NewAndOldImages, streamstest.WithKeySchema("UserId", "GameTitle"))
			st.OpenShard("")
			got, err := shards.Describe(t.Context(), e.client, st.ARN())
			if err != nil {
				t.Fatalf("Describe() error = %v", err)
			}
			if got.HashKey != "UserId" || got.Status != types.StreamStatusEnabled {
				t.Errorf("Describe() HashKey, Status = %q, %q; want %q, %q", got.HashKey, got.Status, "UserId", types.StreamStatusEnabled)
			}
		}},
		{"a split closes the parent at its last record, and its children name it", func(t *testing.T, e env) {
			st := e.srv.CreateStream("T", streamstest.KeysOnly)
			p := st.OpenShard("")
			seqs := st.Put(p, streamstest.Inserts(3)...)
			l, r := st.Split(p)
			got, err := shards.Describe(t.Context(), e.client, st.ARN())
			if err != nil {
				t.Fatalf("Describe() error = %v", err)
			}
			want := []shards.Shard{
				{ID: p, EndSeq: seqs[2]},
				{ID: l, ParentID: p},
				{ID: r, ParentID: p},
			}
			if len(got.Shards) != len(want) {
				t.Fatalf("Describe() = %+v, want %d shards", got.Shards, len(want))
			}
			for i, w := range want {
				g := got.Shards[i]
				if g.ID != w.ID || g.ParentID != w.ParentID || g.EndSeq != w.EndSeq || g.StartSeq == "" {
					t.Errorf("Describe() shard %d = %+v, want %+v with a StartSeq", i, g, w)
				}
			}
			if !got.Shards[0].Closed() || got.Shards[1].Closed() || got.Shards[2].Closed() {
				t.Errorf("Closed() = %v, %v, %v; want the parent closed and the children open",
					got.Shards[0].Closed(), got.Shards[1].Closed(), got.Shards[2].Closed())
			}
		}},
		{"a disabled stream is DISABLED and all its shards are closed", func(t *testing.T, e env) {
			st := e.srv.CreateStream("T", streamstest.KeysOnly)
			st.OpenShards(3)
			st.Disable()
			got, err := shards.Describe(t.Context(), e.client, st.ARN())
			if err != nil {
				t.Fatalf("Describe() error = %v", err)
			}
			if got.Status != types.StreamStatusDisabled {
				t.Errorf("Describe() Status = %q, want %q", got.Status, types.StreamStatusDisabled)
			}
			for _, s := range got.Shards {
				if !s.Closed() {
					t.Errorf("shard %s Closed() = false, want true", s.ID)
				}
			}
		}},
		{"an unknown stream is an error that wraps ResourceNotFoundException", func(t *testing.T, e env) {
			_, err := shards.Describe(t.Context(), e.client, "arn:aws:dynamodb:us-east-1:123456789012:table/X/stream/2020-01-01T00:00:00.000")
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Errorf("Describe() error = %v, want a *types.ResourceNotFoundException inside", err)
			}
		}},
		{"Children after a Split are exactly the two children, in one call", func(t *testing.T, e env) {
			st := e.srv.CreateStream("T", streamstest.KeysOnly)
			roots := st.OpenShards(250) // unfiltered, the listing would take 3 calls
			l, r := st.Split(roots[100])
			st.Rollover(roots[101]) // another parent's child, not to be listed
			before := e.srv.Calls(streamstest.OpDescribeStream)
			kids, err := shards.Children(t.Context(), e.client, st.ARN(), roots[100])
			if err != nil {
				t.Fatalf("Children() error = %v", err)
			}
			if got, want := shardIDs(kids), []string{l, r}; !slices.Equal(got, want) {
				t.Errorf("Children() = %v, want %v", got, want)
			}
			for _, k := range kids {
				if k.ParentID != roots[100] || k.Closed() {
					t.Errorf("child %+v, want parent %s and open", k, roots[100])
				}
			}
			if n := e.srv.Calls(streamstest.OpDescribeStream) - before; n != 1 {
				t.Errorf("DescribeStream calls = %d, want 1 (ShardFilter CHILD_SHARDS)", n)
			}
		}},
		{"Children of a shard that has none are none", func(t *testing.T, e env) {
			st := e.srv.CreateStream("T", streamstest.KeysOnly)
			roots := st.OpenShards(3)
			st.Split(roots[1])
			kids, err := shards.Children(t.Context(), e.client, st.ARN(), roots[0])
			if err != nil || len(kids) != 0 {
				t.Errorf("Children() = %v, %v; want none, nil", shardIDs(kids), err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := streamstest.New(t, streamstest.Options{Clock: streamstest.NewManualClock(t0)})
			tc.run(t, env{srv: srv, client: newClient(t, srv, true)})
		})
	}
}

// page is one DescribeStream answer a fakeDescribe gives: the shards and the cursor, or no stream
// description at all.
type page struct {
	shards        []types.Shard
	next          string
	noDescription bool
}

// fakeDescribe answers DescribeStream from pages(call), for listings the test endpoint cannot make:
// repeated cursors, endless listings, malformed answers. It is narrow and fails the test on any call
// it does not expect: another stream, a cursor other than the last one it gave, a call past max.
type fakeDescribe struct {
	t     *testing.T
	arn   string
	max   int
	pages func(call int) page

	calls int
	last  string // the cursor of the previous answer
}

func (f *fakeDescribe) DescribeStream(_ context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.calls++
	switch {
	case f.calls > f.max:
		f.t.Errorf("unexpected DescribeStream call %d (at most %d expected)", f.calls, f.max)
		return nil, fmt.Errorf("fake: unexpected call %d", f.calls)
	case aws.ToString(in.StreamArn) != f.arn:
		f.t.Errorf("DescribeStream(StreamArn %q), want %q", aws.ToString(in.StreamArn), f.arn)
		return nil, fmt.Errorf("fake: unexpected stream")
	case aws.ToString(in.ExclusiveStartShardId) != f.last:
		f.t.Errorf("DescribeStream call %d ExclusiveStartShardId = %q, want the last cursor %q", f.calls, aws.ToString(in.ExclusiveStartShardId), f.last)
		return nil, fmt.Errorf("fake: unexpected cursor")
	}
	p := f.pages(f.calls)
	f.last = p.next
	if p.noDescription {
		return &dynamodbstreams.DescribeStreamOutput{}, nil
	}
	d := &types.StreamDescription{StreamArn: aws.String(f.arn), Shards: p.shards}
	if p.next != "" {
		d.LastEvaluatedShardId = aws.String(p.next)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: d}, nil
}

func fakeShard(id string) types.Shard { return types.Shard{ShardId: aws.String(id)} }

// TestDescribeMisbehavingService covers answers the real service should not give but a caller must
// survive without looping.
func TestDescribeMisbehavingService(t *testing.T) {
	const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2025-03-14T15:09:26.000"
	tests := []struct {
		name      string
		max       int
		pages     func(call int) page
		wantErr   bool
		wantCalls int
		wantIDs   []string
	}{
		{
			name: "a repeated LastEvaluatedShardId fails instead of looping",
			max:  2,
			pages: func(call int) page {
				return page{shards: []types.Shard{fakeShard(fmt.Sprint("s-", call))}, next: "s-1"}
			},
			wantErr:   true,
			wantCalls: 2,
		},
		{
			name: "a cursor that comes back after others fails too",
			max:  3,
			pages: func(call int) page {
				return page{next: []string{"", "a", "b", "a"}[call]}
			},
			wantErr:   true,
			wantCalls: 3,
		},
		{
			name: "a listing that never ends fails at the page cap",
			max:  1000,
			pages: func(call int) page {
				id := fmt.Sprint("s-", call)
				return page{shards: []types.Shard{fakeShard(id)}, next: id}
			},
			wantErr:   true,
			wantCalls: 1000,
		},
		{
			name:      "an answer without a stream description is an error",
			max:       1,
			pages:     func(int) page { return page{noDescription: true} },
			wantErr:   true,
			wantCalls: 1,
		},
		{
			name: "a shard on two overlapping pages is listed once",
			max:  2,
			pages: func(call int) page {
				if call == 1 {
					return page{shards: []types.Shard{fakeShard("a"), fakeShard("b")}, next: "b"}
				}
				return page{shards: []types.Shard{fakeShard("b"), fakeShard("c")}}
			},
			wantCalls: 2,
			wantIDs:   []string{"a", "b", "c"},
		},
		{
			name: "a shard without an ID is skipped",
			max:  1,
			pages: func(int) page {
				return page{shards: []types.Shard{fakeShard("a"), {}, fakeShard("b")}}
			},
			wantCalls: 1,
			wantIDs:   []string{"a", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDescribe{t: t, arn: arn, max: tc.max, pages: tc.pages}
			got, err := shards.Describe(t.Context(), f, arn)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Describe() error = %v, want error %v", err, tc.wantErr)
			}
			if f.calls != tc.wantCalls {
				t.Errorf("DescribeStream calls = %d, want %d", f.calls, tc.wantCalls)
			}
			if !tc.wantErr && !slices.Equal(shardIDs(got.Shards), tc.wantIDs) {
				t.Errorf("Describe() shards = %v, want %v", shardIDs(got.Shards), tc.wantIDs)
			}
		})
	}
}
