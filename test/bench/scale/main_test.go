// Package scale measures what the poller binary costs at many shards: it starts the Streams test
// endpoint with N open shards (the lease table in a fresh DynamoDB Local behind it) and the real
// binary, built without -race, with its defaults, and reports what the process uses and what it
// asks of AWS. It runs only with -bench (scripts/bench-scale.sh), one scenario after the other:
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 3h ./test/bench/scale \
//	    -args -scale.scenarios idle/1000,busy/1000 [-scale.idle_poll_interval 1s] [-scale.window 60s]
//
// Scenarios (NAME/SHARDS):
//
//	idle      one process, no records: CPU, RSS, GetRecords per shard per second, lease-table and
//	          DescribeStream calls per shard-hour, renewal rounds and failures, leases that lapsed
//	busy      one process, 5,000 records/s spread over the shards: write-to-sink latency p50/p99
//	sigterm   one process holding every lease: time from SIGTERM to exit, exit code, leases released
//	balance   four processes started together: time until every lease is owned, the loads are within
//	          the fair-share range and no lease is asked for
//
// Every figure is printed as a block of lines (the report) and as benchmark metrics.
package scale

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poller-dev/poller/internal/testenv"
)

var (
	scenarios    = flag.String("scale.scenarios", "idle/100", "comma-separated NAME/SHARDS: idle, busy, sigterm, balance")
	idlePoll     = flag.Duration("scale.idle_poll_interval", 0, "write idle_poll_interval into every pipeline (0: leave the key out)")
	window       = flag.Duration("scale.window", time.Minute, "how long idle and busy are measured once every lease is held")
	settle       = flag.Duration("scale.settle", 10*time.Second, "wait after every lease is held, before measuring")
	startTimeout = flag.Duration("scale.start_timeout", 15*time.Minute, "how long the poller may take to hold every lease")
	rate         = flag.Int("scale.rate", 5000, "busy: records per second over all shards")
	replicas     = flag.Int("scale.replicas", 4, "balance: processes")
	logs         = flag.String("scale.logs", "", "copy each poller's log (warnings and errors) into this folder")
)

var pollerBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // plain go test: nothing to build
	}
	os.Exit(testenv.MainWithPoller(m, &pollerBin))
}

// scenario is one NAME/SHARDS of -scale.scenarios.
type scenario struct {
	name   string
	shards int
}

func parseScenarios(s string) ([]scenario, error) {
	var out []scenario
	for _, f := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(f), "/")
		shards, err := strconv.Atoi(n)
		if !ok || err != nil || shards < 1 {
			return nil, fmt.Errorf("-scale.scenarios: %q is not NAME/SHARDS", f)
		}
		if _, known := runners[name]; !known {
			return nil, fmt.Errorf("-scale.scenarios: unknown scenario %q (idle, busy, sigterm, balance)", name)
		}
		out = append(out, scenario{name, shards})
	}
	return out, nil
}

var runners = map[string]func(*testing.B, int){
	"idle":    runIdle,
	"busy":    runBusy,
	"sigterm": runSigterm,
	"balance": runBalance,
}

// BenchmarkScale runs the scenarios of -scale.scenarios, once each (-benchtime 1x).
func BenchmarkScale(b *testing.B) {
	list, err := parseScenarios(*scenarios)
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range list {
		name := fmt.Sprintf("%s/shards=%d", sc.name, sc.shards)
		if *idlePoll > 0 {
			name += "/idle_poll_interval=" + idlePoll.String()
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				runners[sc.name](b, sc.shards)
			}
		})
	}
}
