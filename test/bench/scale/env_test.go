package scale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/poller-dev/poller/internal/streamstest"
	"github.com/poller-dev/poller/internal/testenv"
	"github.com/poller-dev/poller/pkg/checkpoint"
)

// pipeline is the pipeline name every scenario runs.
const pipeline = "scale"

// env is one scenario's world: a fresh DynamoDB Local for the lease table, the Streams test endpoint
// in front of it with one stream of n open shards, and a sink.
type env struct {
	srv    *streamstest.Server
	st     *streamstest.Stream
	shards []string
	store  *checkpoint.Store
	db     *dynamodb.Client // DynamoDB Local itself
	table  string
	sink   *sink
}

func newEnv(b *testing.B, n int) *env {
	b.Helper()
	ddb := testenv.NewDynamoDBLocal(b) // fresh: its request counts and memory are this scenario's
	srv := streamstest.New(b, streamstest.Options{Upstream: ddb})
	st := srv.CreateStream("Scale", types.StreamViewTypeNewAndOldImages, streamstest.WithKeySchema("pk"))
	table := fmt.Sprintf("scale-leases-%d", time.Now().UnixNano())
	db := testenv.DynamoDB(ddb)
	return &env{srv: srv, st: st, shards: st.OpenShards(n), store: checkpoint.New(db, table), db: db,
		table: table, sink: newSink(b)}
}

// config is a poller config for worker id on e, with the harness's knobs.
func (e *env) config(id string, port int) string {
	knobs := ""
	if *idlePoll > 0 {
		knobs = "\n    idle_poll_interval: " + idlePoll.String()
	}
	return fmt.Sprintf(`aws: {region: us-east-1, endpoint_url: %s}
leases: {table: %s, worker_id: %s}
server: {listen: "127.0.0.1:%d"}
log: {level: warn}
pipelines:
  - name: %s
    source: {stream_arn: %s}
    sink: {type: http, url: %s}%s
`, e.srv.URL, e.table, id, port, pipeline, e.st.ARN(), e.sink.srv.URL, knobs)
}

// proc is a running poller process; its warnings and errors go to a log file.
type proc struct {
	id      string
	cmd     *exec.Cmd
	metrics string // the /metrics URL
	logPath string
	started time.Time
	done    chan struct{}
	err     error // Wait's error, once done is closed
}

// startPoller validates the config, starts the binary as worker id and stops it (kill) at cleanup.
// A config that this binary rejects because of a harness knob (idle_poll_interval) skips the
// scenario with the reason.
func (e *env) startPoller(b *testing.B, id string) *proc {
	b.Helper()
	port := freePort(b)
	dir := b.TempDir()
	cfg := filepath.Join(dir, id+".yaml")
	if err := os.WriteFile(cfg, []byte(e.config(id, port)), 0o644); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(pollerBin, "validate", "--config", cfg).CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if *idlePoll > 0 && strings.Contains(msg, "idle_poll_interval") {
			fmt.Printf("SKIPPED: this poller does not accept idle_poll_interval: %s\n", msg)
			b.Skipf("this poller does not accept idle_poll_interval: %s", msg)
		}
		b.Fatalf("poller validate: %v: %s", err, msg)
	}
	p := &proc{id: id, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), logPath: filepath.Join(dir, id+".log"),
		done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		b.Fatal(err)
	}
	p.cmd = exec.Command(pollerBin, "run", "--config", cfg)
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		b.Fatalf("start poller: %v", err)
	}
	p.started = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	b.Cleanup(func() {
		p.kill()
		p.keepLog(b)
	})
	return p
}

// keepLog copies the process's log into -scale.logs, named after the scenario and the worker.
func (p *proc) keepLog(b *testing.B) {
	if *logs == "" {
		return
	}
	data, err := os.ReadFile(p.logPath)
	if err == nil {
		err = os.MkdirAll(*logs, 0o755)
	}
	if err == nil {
		name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name()) + "-" + p.id + ".log"
		err = os.WriteFile(filepath.Join(*logs, name), data, 0o644)
	}
	if err != nil {
		b.Errorf("keep the poller's log: %v", err)
	}
}

// kill stops the process at once, if it still runs, and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// alive fails the scenario if the process ended, with the end of its log.
func (p *proc) alive(b *testing.B) {
	b.Helper()
	select {
	case <-p.done:
		b.Fatalf("poller %s exited: %v; log ends with:\n%s", p.id, p.err, p.logTail(20))
	default:
	}
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	data, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logCount counts the log lines that contain msg.
func (p *proc) logCount(msg string) int {
	data, _ := os.ReadFile(p.logPath)
	return bytes.Count(data, []byte(msg))
}

// exitCode is the process's exit status once done (-1 for a signal).
func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// leaseState is the lease table's view of the pipeline at one moment.
type leaseState struct {
	leases  []checkpoint.Lease
	owners  map[string]int // leases per owner
	free    int            // leases without an owner
	wanted  int            // leases some worker asked for
	counter map[string]int64
	workers []checkpoint.Worker // the heartbeat items
}

func (e *env) leaseState(ctx context.Context) (leaseState, error) {
	leases, workers, err := e.store.List(ctx, pipeline)
	if err != nil {
		return leaseState{}, fmt.Errorf("list the lease table: %w", err)
	}
	s := leaseState{leases: leases, owners: map[string]int{}, counter: map[string]int64{}, workers: workers}
	for _, l := range leases {
		if l.Finished {
			continue
		}
		s.counter[l.ShardID] = l.Counter
		if l.Owner == "" {
			s.free++
		} else {
			s.owners[l.Owner]++
		}
		if l.WantedBy != "" {
			s.wanted++
		}
	}
	return s, nil
}

// waitHeld waits until the n leases are owned, by the workers of ps alone (each p of ps alive), and
// returns when.
func (e *env) waitHeld(b *testing.B, n int, ps ...*proc) time.Time {
	b.Helper()
	deadline := time.Now().Add(*startTimeout)
	for {
		s, err := e.leaseState(b.Context())
		if err == nil {
			owned := 0
			for _, p := range ps {
				owned += s.owners[p.id]
			}
			if owned == n {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("after %s: %d of %d leases owned (%v, %d free)", *startTimeout, owned, n, s.owners, s.free)
			}
		} else if time.Now().After(deadline) {
			b.Fatal(err)
		}
		for _, p := range ps {
			p.alive(b)
		}
		sleep(b, 2*time.Second)
	}
}

// sleep waits d, or fails the scenario if the benchmark's context ends first.
func sleep(b *testing.B, d time.Duration) {
	b.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.Context().Done():
		b.Fatal("interrupted")
	}
}

// listCost reads the pipeline's items as a worker's List does (one strongly consistent Query, paged)
// and returns the read request units DynamoDB reports for it, the items and their average size
// (the table's size over its items, from DescribeTable; DynamoDB Local may report it late or not).
func (e *env) listCost(ctx context.Context) (rru float64, items int, avgBytes float64, err error) {
	var start map[string]ddbtypes.AttributeValue
	for page := 0; page == 0 || start != nil; page++ {
		out, err := e.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(e.table), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("#p = :p"),
			ExpressionAttributeNames:  map[string]string{"#p": "pipeline"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: pipeline}},
			ReturnConsumedCapacity:    ddbtypes.ReturnConsumedCapacityTotal,
		})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("query the lease table: %w", err)
		}
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			rru += *out.ConsumedCapacity.CapacityUnits
		}
		items += len(out.Items)
		start = out.LastEvaluatedKey
	}
	desc, err := e.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(e.table)})
	if err == nil && desc.Table.TableSizeBytes != nil && desc.Table.ItemCount != nil && *desc.Table.ItemCount > 0 {
		avgBytes = float64(*desc.Table.TableSizeBytes) / float64(*desc.Table.ItemCount)
	}
	return rru, items, avgBytes, nil
}
