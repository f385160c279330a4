package hooks_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/poller-dev/poller/pkg/hooks"
)

// calls records what it is told; it implements only some of the hooks.
type calls struct{ got []string }

func (c *calls) OnGetRecords(shardID, result string) {
	c.got = append(c.got, "getrecords "+shardID+" "+result)
}
func (c *calls) OnLeaseRound(err error) { c.got = append(c.got, "round "+errString(err)) }

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// every implements every hook of the Set, to check that each method reaches its interface.
type every struct{ n int }

func (e *every) OnGetRecords(string, string)                             { e.n++ }
func (e *every) OnTrimmed(string)                                        { e.n++ }
func (e *every) OnMemoryWait(string)                                     { e.n++ }
func (e *every) OnBufferedBytes(int64)                                   { e.n++ }
func (e *every) OnRecordsPolled(string, int)                             { e.n++ }
func (e *every) OnRecordsFilteredOut(string, int)                        { e.n++ }
func (e *every) OnRecordsDropped(string, string, int)                    { e.n++ }
func (e *every) OnSinkCall(string, string, time.Duration, error)         { e.n++ }
func (e *every) OnRecordsDelivered(string, []events.DynamoDBEventRecord) { e.n++ }
func (e *every) OnBatchBisected(string)                                  { e.n++ }
func (e *every) OnOnFailureError(string, error)                          { e.n++ }
func (e *every) OnCheckpoint(string, string)                             { e.n++ }
func (e *every) OnShardStarted(string)                                   { e.n++ }
func (e *every) OnShardStopped(string, bool)                             { e.n++ }
func (e *every) OnIteratorAge(string, time.Time)                         { e.n++ }
func (e *every) OnLeasesOwned(int)                                       { e.n++ }
func (e *every) OnLeaseTakeover(string)                                  { e.n++ }
func (e *every) OnLeaseRound(error)                                      { e.n++ }
func (e *every) OnLeaseRenewals(time.Duration, int)                      { e.n++ }
func (e *every) OnRecordsSkipped(string, string, int)                    { e.n++ }
func (e *every) OnPipelinePaused(bool)                                   { e.n++ }
func (e *every) OnSinkCallStarted(string)                                { e.n++ }
func (e *every) OnSinkThrottled(string)                                  { e.n++ }
func (e *every) OnRecordsOnFailure(string, int)                          { e.n++ }
func (e *every) OnCheckpointWritten(string, string)                      { e.n++ }

func TestSetCallsOnlyTheHooksThatImplementAMethod(t *testing.T) {
	a, b := &calls{}, &calls{}
	s := hooks.New(a, nil, "not a hook", b)
	s.OnGetRecords("shard-1", hooks.ResultThrottled)
	s.OnLeaseRound(errors.New("table down"))
	s.OnCheckpoint("shard-1", hooks.ResultOK) // nobody implements it
	want := []string{"getrecords shard-1 throttled", "round table down"}
	for name, c := range map[string]*calls{"first": a, "second": b} {
		if !reflect.DeepEqual(c.got, want) {
			t.Errorf("%s hook got %q, want %q", name, c.got, want)
		}
	}
}

func TestEveryMethodReachesItsHook(t *testing.T) {
	e := &every{}
	s := hooks.New(e)
	s.OnGetRecords("s", hooks.ResultOK)
	s.OnTrimmed("s")
	s.OnMemoryWait("s")
	s.OnBufferedBytes(1)
	s.OnRecordsPolled("s", 1)
	s.OnRecordsFilteredOut("s", 1)
	s.OnRecordsDropped("s", hooks.DroppedMaxAge, 1)
	s.OnSinkCall("s", hooks.ResultOK, time.Second, nil)
	s.OnRecordsDelivered("s", nil)
	s.OnBatchBisected("s")
	s.OnOnFailureError("s", errors.New("x"))
	s.OnCheckpoint("s", hooks.ResultLost)
	s.OnShardStarted("s")
	s.OnShardStopped("s", true)
	s.OnIteratorAge("s", time.Now())
	s.OnLeasesOwned(3)
	s.OnLeaseTakeover("s")
	s.OnLeaseRound(nil)
	s.OnLeaseRenewals(time.Second, 1)
	s.OnRecordsSkipped("s", hooks.SkippedBeforeStart, 1)
	s.OnPipelinePaused(true)
	s.OnSinkCallStarted("s")
	s.OnSinkThrottled("s")
	s.OnRecordsOnFailure("s", 1)
	s.OnCheckpointWritten("s", "42")
	if want := reflect.TypeOf(&hooks.Set{}).Elem().NumField(); e.n != want {
		t.Errorf("a hook implementing everything was called %d times, want %d (one per hook interface)", e.n, want)
	}
}

func TestANilSetCallsNothing(t *testing.T) {
	var s *hooks.Set
	s.OnGetRecords("s", hooks.ResultOK) // must not panic
	s.OnLeaseRound(nil)
}
