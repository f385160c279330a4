package streamstest_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	st "github.com/poller-dev/poller/internal/streamstest"
)

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		op         st.Op
		hook       st.FaultFunc
		wantCode   string
		wantStatus int
	}{
		{"a throttled GetRecords is a LimitExceededException", st.OpGetRecords, always(st.Throttle()), "LimitExceededException", 400},
		{"an injected expired iterator is an ExpiredIteratorException", st.OpGetRecords, always(st.ExpiredIterator()), "ExpiredIteratorException", 400},
		{"injected trimming is a TrimmedDataAccessException", st.OpGetRecords, always(st.Trimmed()), "TrimmedDataAccessException", 400},
		{"an injected internal error is an InternalServerError with status 500", st.OpGetRecords, always(st.InternalError()), "InternalServerError", 500},
		{"an injected missing resource is a ResourceNotFoundException", st.OpGetRecords, always(st.ResourceNotFound()), "ResourceNotFoundException", 400},
		{"a plain error from a hook becomes an InternalServerError", st.OpGetRecords, always(errors.New("boom")), "InternalServerError", 500},
		{"a throttled DescribeStream is a LimitExceededException", st.OpDescribeStream, always(st.Throttle()), "LimitExceededException", 400},
		{"a throttled GetShardIterator is a LimitExceededException", st.OpGetShardIterator, always(st.Throttle()), "LimitExceededException", 400},
		{"a hook for another shard leaves this one alone", st.OpGetRecords, st.OnShard("shardId-none", always(st.Throttle())), "", 200},
		{"EmptyPage on DescribeStream is no fault", st.OpDescribeStream, always(st.EmptyPage()), "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, st.Options{})
			s := e.srv.CreateStream("T", st.KeysOnly)
			sh := s.OpenShard("")
			s.Put(sh, st.Inserts(3)...)
			it := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")
			e.srv.Fault(tc.op, tc.hook)
			var err error
			switch tc.op {
			case st.OpGetRecords:
				_, err = e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			case st.OpDescribeStream:
				_, err = e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.ARN())})
			case st.OpGetShardIterator:
				_, err = e.client.GetShardIterator(e.ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(s.ARN()), ShardId: aws.String(sh), ShardIteratorType: types.ShardIteratorTypeLatest})
			}
			if got := errorCode(err); got != tc.wantCode {
				t.Fatalf("%s error = %v, want code %q", tc.op, err, tc.wantCode)
			}
			if err != nil {
				var re *smithyhttp.ResponseError
				if !errors.As(err, &re) || re.HTTPStatusCode() != tc.wantStatus {
					t.Errorf("%s error = %v, want HTTP status %d", tc.op, err, tc.wantStatus)
				}
			}
			e.srv.Fault(tc.op, nil)
			if _, got := e.readAll(t, it); got == "" {
				t.Errorf("reading after the hook was removed: no next iterator on an open shard")
			}
		})
	}
}

func always(err error) st.FaultFunc { return func(st.Request) error { return err } }

func TestFaultHooks(t *testing.T) {
	t.Run("the SDK retries two throttles and succeeds on the third call", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		s := e.srv.CreateStream("T", st.KeysOnly)
		sh := s.OpenShard("")
		want := s.Put(sh, st.Inserts(2)...)
		it := e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, "")
		e.srv.Fault(st.OpGetRecords, st.Times(2, st.Throttle()))
		out, err := defaultRetryClient(e.srv.URL).GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
		if err != nil || len(out.Records) != len(want) {
			t.Fatalf("GetRecords() with retries = %v, error %v; want %d records", out, err, len(want))
		}
		if got := e.srv.Calls(st.OpGetRecords); got != 3 {
			t.Errorf("Calls(GetRecords) = %d, want 3", got)
		}
	})
	t.Run("EmptyPage answers no records and an iterator at the same place", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		s := e.srv.CreateStream("T", st.KeysOnly)
		sh := s.OpenShard("")
		want := s.Put(sh, st.Inserts(2)...)
		s.CloseShard(sh)
		e.srv.Fault(st.OpGetRecords, st.Times(1, st.EmptyPage()))
		out, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, ""))})
		if err != nil || len(out.Records) != 0 || out.NextShardIterator == nil {
			t.Fatalf("GetRecords() under EmptyPage = %d records, next %v, error %v; want an empty page with a next iterator", len(out.Records), out.NextShardIterator, err)
		}
		if got, next := e.readAll(t, aws.ToString(out.NextShardIterator)); len(got) != len(want) || next != "" {
			t.Errorf("read after the empty page = %v, next %q; want %v and the shard finished", got, next, want)
		}
	})
	t.Run("a hook sees the operation, its call number, and the stream and shard, also from an iterator", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		s := e.srv.CreateStream("T", st.KeysOnly)
		sh := s.OpenShard("")
		var mu sync.Mutex
		var seen []st.Request
		record := func(r st.Request) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, r)
			return nil
		}
		e.srv.Fault(st.OpGetShardIterator, record)
		e.srv.Fault(st.OpGetRecords, record)
		e.readAll(t, e.iter(t, s, sh, types.ShardIteratorTypeTrimHorizon, ""))
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 {
			t.Fatalf("hook saw %d requests, want 2", len(seen))
		}
		for i, op := range []st.Op{st.OpGetShardIterator, st.OpGetRecords} {
			if r := seen[i]; r.Op != op || r.Call != 1 || r.StreamARN != s.ARN() || r.ShardID != sh || r.Context() == nil {
				t.Errorf("hook saw %+v, want %s call 1 on %s", r, op, sh)
			}
		}
	})
	t.Run("Close ends a hook that waits on the request's context", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		s := e.srv.CreateStream("T", st.KeysOnly)
		it := e.iter(t, s, s.OpenShard(""), types.ShardIteratorTypeTrimHorizon, "")
		entered := make(chan struct{})
		var once sync.Once
		e.srv.Fault(st.OpGetRecords, func(r st.Request) error {
			once.Do(func() { close(entered) })
			<-r.Context().Done()
			return st.InternalError()
		})
		done := make(chan error, 1)
		go func() {
			_, err := e.client.GetRecords(e.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			done <- err
		}()
		<-entered
		e.srv.Close()
		if err := <-done; err == nil {
			t.Errorf("GetRecords() during Close error = nil, want one")
		}
	})
	t.Run("calls of every operation are counted, faulted ones too", func(t *testing.T) {
		e := newEnv(t, st.Options{})
		s := e.srv.CreateStream("T", st.KeysOnly)
		e.srv.Fault(st.OpDescribeStream, st.Times(1, st.Throttle()))
		for range 3 {
			_, _ = e.client.DescribeStream(e.ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.ARN())})
		}
		_, _ = e.client.ListStreams(e.ctx, &dynamodbstreams.ListStreamsInput{})
		if d, l, g := e.srv.Calls(st.OpDescribeStream), e.srv.Calls(st.OpListStreams), e.srv.Calls(st.OpGetRecords); d != 3 || l != 1 || g != 0 {
			t.Errorf("Calls() = DescribeStream %d, ListStreams %d, GetRecords %d; want 3, 1, 0", d, l, g)
		}
	})
}
