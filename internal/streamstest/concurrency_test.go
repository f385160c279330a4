package streamstest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"golang.org/x/sync/errgroup"

	st "github.com/poller-dev/poller/internal/streamstest"
)

// TestManyPollersAtOnce runs 32 readers, each following one root shard's lineage through splits and
// rollovers, and 4 DescribeStream pagers, while a writer appends records and reshapes shards. Every
// record must be read once, in order, and -race must stay quiet.
func TestManyPollersAtOnce(t *testing.T) {
	e := newEnv(t, st.Options{})
	s := e.srv.CreateStream("T", st.KeysOnly)
	roots := s.OpenShards(32)

	var mu sync.Mutex
	written := map[string][]string{} // shard → sequence numbers, in order
	read := map[string][]string{}

	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	writerDone := make(chan struct{})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(writerDone)
		open := slices.Clone(roots)
		for round := range 20 {
			for _, sh := range open {
				seqs := s.Put(sh, st.Inserts(5)...)
				mu.Lock()
				written[sh] = append(written[sh], seqs...)
				mu.Unlock()
			}
			if round%5 == 4 { // reshape: split every third open shard, roll over every fifth
				var next []string
				for i, sh := range open {
					switch {
					case i%3 == 0:
						a, b := s.Split(sh)
						next = append(next, a, b)
					case i%5 == 0:
						next = append(next, s.Rollover(sh))
					default:
						next = append(next, sh)
					}
				}
				open = next
			}
		}
		for _, sh := range open {
			s.CloseShard(sh)
		}
		return nil
	})
	for _, root := range roots {
		g.Go(func() error { return followLineage(gctx, e.client, s.ARN(), root, &mu, read) })
	}
	for range 4 {
		g.Go(func() error {
			for {
				select {
				case <-writerDone:
					return nil
				default:
				}
				if err := describeAll(gctx, e.client, s.ARN()); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("pollers: %v", err)
	}
	total := 0
	for sh, want := range written {
		total += len(want)
		if got := read[sh]; !slices.Equal(got, want) {
			t.Errorf("shard %s: read %d records, want the %d written, in order", sh, len(got), len(want))
		}
	}
	t.Logf("%d shards, %d records read by 32 pollers; %d GetRecords, %d DescribeStream calls", len(written), total,
		e.srv.Calls(st.OpGetRecords), e.srv.Calls(st.OpDescribeStream))
}

// followLineage reads a shard to its end, then its children, depth first.
func followLineage(ctx context.Context, c *dynamodbstreams.Client, arn, shardID string, mu *sync.Mutex, read map[string][]string) error {
	it, err := c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return fmt.Errorf("get shard iterator for %s: %w", shardID, err)
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for next := it.ShardIterator; next != nil; {
		out, err := c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: next, Limit: aws.Int32(7)})
		if err != nil {
			return fmt.Errorf("get records of %s: %w", shardID, err)
		}
		mu.Lock()
		for _, r := range out.Records {
			read[shardID] = append(read[shardID], aws.ToString(r.Dynamodb.SequenceNumber))
		}
		mu.Unlock()
		next = out.NextShardIterator
		if len(out.Records) == 0 && next != nil {
			select { // idle: poll again shortly
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	out, err := c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeChildShards, ShardId: aws.String(shardID)}})
	if err != nil {
		return fmt.Errorf("describe children of %s: %w", shardID, err)
	}
	for _, child := range out.StreamDescription.Shards {
		if err := followLineage(ctx, c, arn, aws.ToString(child.ShardId), mu, read); err != nil {
			return err
		}
	}
	return nil
}

func describeAll(ctx context.Context, c *dynamodbstreams.Client, arn string) error {
	var start *string
	for page := 0; page < 100; page++ {
		out, err := c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
		if err != nil {
			return fmt.Errorf("describe stream: %w", err)
		}
		if start = out.StreamDescription.LastEvaluatedShardId; start == nil {
			return nil
		}
	}
	return fmt.Errorf("describe stream: more than 100 pages")
}

// TestConnsCountsAcceptedConnections: a client that keeps its connection alive opens one for many
// calls; one that does not opens one per call. (A plain HTTP client: the SDK sometimes drops a
// connection on its own, see Client.)
func TestConnsCountsAcceptedConnections(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepAlive bool
		want      int
	}{
		{"a kept-alive connection serves every call", true, 1},
		{"without keep-alive each call opens its own", false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := st.New(t, st.Options{})
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.DisableKeepAlives = !tc.keepAlive
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			for range 5 {
				resp, err := client.Post(srv.URL, "application/x-amz-json-1.0", strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if got := srv.Conns(); got != tc.want {
				t.Errorf("Conns() = %d, want %d", got, tc.want)
			}
		})
	}
}
