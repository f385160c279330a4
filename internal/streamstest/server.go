package streamstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configures a Server. The zero value serves streams only, on the system clock.
type Options struct {
	// Upstream is the base URL (e.g. DynamoDB Local's) that receives every request that is not a
	// DynamoDB Streams call, unchanged: a client with one endpoint then keeps its tables upstream and
	// reads streams here. Default empty: such requests get UnknownOperationException.
	Upstream string
	// Clock is read to issue and expire shard iterators and to stamp records. Default: the system clock.
	Clock Clock
	// IteratorTTL is how long a shard iterator stays usable. Default 15 minutes, as in AWS.
	IteratorTTL time.Duration
	// Region goes into ARNs and records' awsRegion. Default us-east-1.
	Region string
	// AccountID goes into ARNs. Default 123456789012.
	AccountID string
}

// Server is a DynamoDB Streams endpoint for tests, which the real aws-sdk-go-v2 dynamodbstreams client
// talks to over HTTP (set BaseEndpoint to URL). It holds streams and their shards in memory, answers
// DescribeStream, GetShardIterator, GetRecords and ListStreams, answers DynamoDB's DescribeTable for
// the tables it has streams of, and forwards every other request to Options.Upstream.
type Server struct {
	// URL is the base endpoint, e.g. http://127.0.0.1:41234.
	URL string

	// Immutable after New.
	clock   Clock
	ttl     time.Duration
	region  string
	account string
	nonce   string // binds iterators to this server
	http    *httptest.Server
	proxy   *httputil.ReverseProxy // nil without Upstream
	tr      *http.Transport
	cancel  context.CancelFunc // ends the requests' base context, so waiting hooks return on Close
	close   sync.Once

	// mu guards the streams and their shards. Request handlers take it for reading; control calls
	// (Stream methods) for writing. It is never held while a hook runs or a response is written.
	mu         sync.RWMutex
	streams    map[string]*Stream // by ARN
	streamList []*Stream          // creation order, for ListStreams
	tables     map[string]*Stream // each table's latest stream

	// hooksMu guards faults and calls; it is never held while a hook runs.
	hooksMu sync.Mutex
	faults  map[Op]FaultFunc
	calls   map[Op]int
	reqSeq  uint64

	conns atomic.Int64 // connections accepted, for Conns
}

// New starts a server on a local port and stops it when the test ends (Close may also be called
// earlier). A bad Options.Upstream fails the test.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := start(opts)
	if err != nil {
		tb.Fatalf("streamstest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func start(opts Options) (*Server, error) {
	s := &Server{
		clock:   opts.Clock,
		ttl:     opts.IteratorTTL,
		region:  opts.Region,
		account: opts.AccountID,
		streams: make(map[string]*Stream),
		tables:  make(map[string]*Stream),
		faults:  make(map[Op]FaultFunc),
		calls:   make(map[Op]int),
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.ttl <= 0 {
		s.ttl = 15 * time.Minute
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "123456789012"
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("make iterator nonce: %w", err)
	}
	s.nonce = hex.EncodeToString(nonce[:])
	if opts.Upstream != "" {
		up, err := url.Parse(opts.Upstream)
		if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
			return nil, fmt.Errorf("options.Upstream: must be an http(s) URL, got %q", opts.Upstream)
		}
		s.tr = http.DefaultTransport.(*http.Transport).Clone()
		s.proxy = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(up)
				r.Out.Host = r.In.Host // unchanged, as signed
			},
			Transport:    s.tr,
			ErrorHandler: s.proxyError,
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.http = httptest.NewUnstartedServer(s)
	s.http.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	s.http.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.http.Start()
	s.URL = s.http.URL
	return s, nil
}

// Close stops the server: waiting hooks see their context done, in-flight requests finish, and idle
// upstream connections close. Closing twice is fine.
func (s *Server) Close() {
	s.close.Do(func() {
		s.cancel()
		s.http.Close()
		if s.tr != nil {
			s.tr.CloseIdleConnections()
		}
	})
}

// Fault installs fn as the hook for op, replacing any earlier one; nil removes it. Hooks see every
// call of op, including the proxied DynamoDB ones (an *APIError from a hook is then answered here and
// not forwarded).
func (s *Server) Fault(op Op, fn FaultFunc) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	if fn == nil {
		delete(s.faults, op)
		return
	}
	s.faults[op] = fn
}

// Calls returns how many calls of op the server has received, faulted ones included.
func (s *Server) Calls(op Op) int {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	return s.calls[op]
}

// Conns returns how many connections the server has accepted: with Calls, how well the client
// reuses its connections.
func (s *Server) Conns() int { return int(s.conns.Load()) }

// begin counts a call of op and returns its number, its hook and a request ID.
func (s *Server) begin(op Op) (int, FaultFunc, string) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.calls[op]++
	s.reqSeq++
	return s.calls[op], s.faults[op], fmt.Sprintf("%s%016X", s.nonce[:4], s.reqSeq)
}

// Stream returns the stream with this ARN, or nil.
func (s *Server) Stream(arn string) *Stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[arn]
}
