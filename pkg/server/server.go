// Package server serves poller's HTTP endpoints: /metrics (Prometheus), /healthz (the process is
// alive and its pipelines are not wedged), /readyz (the lease table is reachable and the pipelines
// have started; false again while shutting down, so load balancers and Kubernetes stop counting on
// this replica first) and /status (this process's view of its pipelines, as JSON).
//
// It stands beside the pipelines, not in their data flow: pkg/service starts it with the registry
// that pkg/metrics registers on and a Readiness that follows the pipelines' lease rounds.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is the /readyz state; the zero value is not ready.
type Readiness struct {
	ready  atomic.Bool
	reason atomic.Value // string
}

// Set marks the process ready or not, with a reason shown by /readyz.
func (r *Readiness) Set(ready bool, reason string) {
	r.ready.Store(ready)
	r.reason.Store(reason)
}

// State reports readiness and its reason.
func (r *Readiness) State() (bool, string) {
	s, _ := r.reason.Load().(string)
	return r.ready.Load(), s
}

// Collector exports the readiness as the gauge poller_ready (1 ready, 0 not), so that an alert can
// catch a replica that stays not ready (its /readyz is only seen by the platform's probes).
func (r *Readiness) Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "poller_ready",
		Help: "1 while /readyz answers 200 (the lease table is reachable and the pipelines started), else 0.",
	}, func() float64 {
		if ok, _ := r.State(); ok {
			return 1
		}
		return 0
	})
}

// Server is the HTTP server of one poller process: made by New, run once by Run.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Option adds to what New serves.
type Option func(*options)

type options struct {
	live   func() error
	status func() any
}

// WithLiveness makes /healthz answer 503 with the error's text whenever check returns an error (a
// wedged pipeline, say), so a liveness probe restarts the process; without it /healthz answers 200
// while the process serves. check is called on every request and must be quick.
func WithLiveness(check func() error) Option {
	return func(o *options) { o.live = check }
}

// WithStatus serves GET /status: the value status returns, as JSON. status is called on every
// request and must be quick and safe for concurrent use.
func WithStatus(status func() any) Option {
	return func(o *options) { o.status = status }
}

// New listens on addr (":9464"; ":0" picks a free port) and prepares the handlers.
func New(addr string, gatherer prometheus.Gatherer, ready *Readiness, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if o.live != nil {
			if err := o.live(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	if o.status != nil {
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			if err := enc.Encode(o.status()); err != nil {
				http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
			}
		})
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := ready.State()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	return &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done, then shuts down (waiting up to 5 s for open requests).
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
