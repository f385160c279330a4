package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/poller-dev/poller/internal/testenv"
)

// TestMain stops the shared DynamoDB Local, then checks that no test left a goroutine behind.
func TestMain(m *testing.M) { testenv.VerifyMain(m) }

// client returns a DynamoDB client for the shared DynamoDB Local.
func client(t testing.TB) *dynamodb.Client {
	t.Helper()
	ep := testenv.DynamoDBLocal(t)
	return dynamodb.NewFromConfig(testenv.AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

var (
	tableSeq   atomic.Int64
	notInTable = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
)

// tableName returns a table name of its own for the test.
func tableName(t testing.TB) string {
	name := notInTable.ReplaceAllString(t.Name(), "-")
	if len(name) > 200 {
		name = name[:200]
	}
	return fmt.Sprintf("leases-%s-%d", name, tableSeq.Add(1))
}

// newStore returns a store on a fresh lease table, reached through api (a wrapper of client(t), or nil
// for the client itself).
func newStore(t testing.TB, wrap func(DynamoAPI) DynamoAPI) *Store {
	t.Helper()
	var api DynamoAPI = client(t)
	if wrap != nil {
		api = wrap(api)
	}
	s := New(api, tableName(t))
	if err := s.EnsureTable(context.Background(), true); err != nil {
		t.Fatalf("EnsureTable() = %v", err)
	}
	return s
}

// counting counts the calls made through it, per operation.
type counting struct {
	DynamoAPI
	mu    sync.Mutex
	calls map[string]int
}

func (c *counting) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
}

// take returns the calls counted since the last take and resets the count.
func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.calls
	c.calls = nil
	if got == nil {
		got = map[string]int{}
	}
	return got
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.count("Query")
	return c.DynamoAPI.Query(ctx, in, o...)
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count("PutItem")
	return c.DynamoAPI.PutItem(ctx, in, o...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count("UpdateItem")
	return c.DynamoAPI.UpdateItem(ctx, in, o...)
}

func (c *counting) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count("DeleteItem")
	return c.DynamoAPI.DeleteItem(ctx, in, o...)
}

// errAnswerLost stands for a response that never arrived (timeout, reset connection).
var errAnswerLost = errors.New("read tcp: connection reset by peer")

// faulty injects, into UpdateItem calls, the faults DynamoDB Local cannot produce: an answer lost after
// the write landed, and an SDK retry of a request that had landed.
type faulty struct {
	DynamoAPI
	mu sync.Mutex
	// next is the fault of the next UpdateItem call: "" none, "lost" or "retried".
	next string
}

func (f *faulty) inject(fault string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = fault
}

func (f *faulty) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	fault := f.next
	f.next = ""
	f.mu.Unlock()
	out, err := f.DynamoAPI.UpdateItem(ctx, in, o...)
	switch {
	case fault == "lost" && err == nil:
		return nil, errAnswerLost
	case fault == "retried" && err == nil:
		return f.DynamoAPI.UpdateItem(ctx, in, o...)
	}
	return out, err
}
