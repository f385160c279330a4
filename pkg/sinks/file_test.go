package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// readLines decodes a JSON Lines file into records.
func readLines(t *testing.T, data string) []events.DynamoDBEventRecord {
	t.Helper()
	var out []events.DynamoDBEventRecord
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r events.DynamoDBEventRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestFileSink(t *testing.T) {
	t.Run("records are appended one JSON record per line, after what the file held", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		require.NoError(t, os.WriteFile(path, []byte(`{"eventID":"old"}`+"\n"), 0o600))
		s, err := NewFile(FileConfig{Path: path}, Deps{})
		require.NoError(t, err)
		b1, b2 := testBatch("1", 2), testBatch("2", 3)
		require.NoError(t, s.Deliver(context.Background(), b1))
		require.NoError(t, s.Deliver(context.Background(), b2))
		require.NoError(t, s.Close(context.Background()))

		data, err := os.ReadFile(path)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		require.Len(t, lines, 6)
		assert.Equal(t, `{"eventID":"old"}`, lines[0])
		got := readLines(t, strings.Join(lines[1:], "\n"))
		assert.Equal(t, append(b1.Records, b2.Records...), got)
		assert.True(t, strings.HasPrefix(lines[1], `{"awsRegion":"us-east-1","dynamodb":{`), "a line is a record, not an envelope: %.50s", lines[1])
	})
	t.Run("each delivery is synced before it returns", func(t *testing.T) {
		s, err := NewFile(FileConfig{Path: filepath.Join(t.TempDir(), "out.jsonl")}, Deps{})
		require.NoError(t, err)
		defer s.Close(context.Background())
		for i := range 3 {
			require.NoError(t, s.Deliver(context.Background(), testBatch(fmt.Sprint(i), 1)))
			s.app.syncTurn <- struct{}{}
			s.app.turn <- struct{}{}
			assert.Equal(t, s.app.written, s.app.synced, "after Deliver %d, synced generation = %d, want %d", i, s.app.synced, s.app.written)
			<-s.app.turn
			<-s.app.syncTurn
		}
	})
	t.Run("a missing folder is an error at New that names the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no-such-dir", "out.jsonl")
		_, err := NewFile(FileConfig{Path: path}, Deps{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
		assert.ErrorIs(t, err, os.ErrNotExist)
		_, statErr := os.Stat(filepath.Dir(path))
		assert.ErrorIs(t, statErr, os.ErrNotExist, "the folder is not created")
	})
	t.Run("deliveries after Close fail, and a second Close does nothing", func(t *testing.T) {
		s, err := NewFile(FileConfig{Path: filepath.Join(t.TempDir(), "out.jsonl")}, Deps{})
		require.NoError(t, err)
		require.NoError(t, s.Close(context.Background()))
		require.NoError(t, s.Close(context.Background()))
		require.ErrorContains(t, s.Deliver(context.Background(), testBatch("1", 1)), "sink closed")
	})
	t.Run("a canceled context writes nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		s, err := NewFile(FileConfig{Path: path}, Deps{})
		require.NoError(t, err)
		defer s.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, s.Deliver(ctx, testBatch("1", 1)), context.Canceled)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Zero(t, fi.Size())
	})
	t.Run("a delivery waiting for a write that does not end gives up with its context", func(t *testing.T) {
		s, err := NewFile(FileConfig{Path: filepath.Join(t.TempDir(), "out.jsonl")}, Deps{})
		require.NoError(t, err)
		defer s.Close(context.Background())
		s.app.turn <- struct{}{} // a write in progress, stuck (a hung disk)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err = s.Deliver(ctx, testBatch("1", 1))
		<-s.app.turn
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "waiting for another write")
	})
	t.Run("a write error names the file", func(t *testing.T) {
		s, err := NewFile(FileConfig{Path: "/dev/full"}, Deps{})
		if err != nil {
			t.Fatalf("open /dev/full (every Linux has it): %v", err)
		}
		defer s.Close(context.Background())
		err = s.Deliver(context.Background(), testBatch("1", 1))
		require.ErrorContains(t, err, "append to /dev/full")
	})
}

func TestFileSinkConcurrentDeliveriesKeepBatchesTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := NewFile(FileConfig{Path: path}, Deps{})
	require.NoError(t, err)
	const workers, batches, size = 8, 40, 7
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for b := range batches {
				if err := s.Deliver(context.Background(), testBatch(fmt.Sprintf("w%d.b%d", w, b), size)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	require.NoError(t, s.Close(context.Background()))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	recs := readLines(t, string(data))
	require.Len(t, recs, workers*batches*size)
	for i := 0; i < len(recs); i += size {
		batch := strings.SplitN(recs[i].Change.SequenceNumber, "-", 2)[0]
		for j := range size {
			assert.Equal(t, fmt.Sprintf("%s-%d", batch, j), recs[i+j].Change.SequenceNumber, "line %d", i+j)
		}
	}
	assert.Equal(t, s.app.written, s.app.synced, "the last fsync covered every write")
}

func TestStdoutSink(t *testing.T) {
	t.Run("records go to Deps.Stdout, one JSON record per line", func(t *testing.T) {
		var buf strings.Builder
		s, err := Registry.New("stdout", nil, Deps{Stdout: &buf})
		require.NoError(t, err)
		b := testBatch("1", 3)
		require.NoError(t, s.Deliver(context.Background(), b))
		require.NoError(t, s.Close(context.Background()))
		assert.Equal(t, b.Records, readLines(t, buf.String()))
		assert.Equal(t, 3, strings.Count(buf.String(), "\n"))
		require.ErrorContains(t, s.Deliver(context.Background(), b), "sink closed")
	})
	t.Run("without Deps.Stdout it writes to standard output", func(t *testing.T) {
		assert.Same(t, NewStdout(Deps{}).out, NewStdout(Deps{}).out, "every stdout sink shares one stream")
	})
	t.Run("a write error is returned", func(t *testing.T) {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		require.NoError(t, r.Close())
		defer w.Close()
		s := NewStdout(Deps{Stdout: w})
		require.ErrorContains(t, s.Deliver(context.Background(), testBatch("1", 1)), "write to stdout")
	})
}

// BenchmarkFileDeliver measures deliveries of 100-record batches, one at a time and from 8
// goroutines (which share fsyncs).
func BenchmarkFileDeliver(b *testing.B) {
	batch := testBatch("1", 100)
	for _, par := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", par), func(b *testing.B) {
			s, err := NewFile(FileConfig{Path: filepath.Join(b.TempDir(), "out.jsonl")}, Deps{})
			require.NoError(b, err)
			defer s.Close(context.Background())
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Deliver(context.Background(), batch); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
