package sinks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A redirected POST must fail the call: following a 301/302/303 turns it into a GET without the
// records, whose 2xx would count the batch as delivered unseen; following a 307/308 would send the
// records somewhere the config does not name.
func TestHTTPNeverFollowsARedirect(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status)+" is a failed call, not followed", func(t *testing.T) {
			var followed atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, "/final?token=SECRET-IN-LOCATION", status)
			})
			mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) {
				followed.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			s := newHTTPSink(t, HTTPConfig{URL: srv.URL + "/events"}, false)

			err := s.Deliver(context.Background(), testBatch("1", 2))

			require.Error(t, err, "Deliver() after a %d answer", status)
			var he *HTTPError
			require.True(t, errors.As(err, &he), "Deliver() error = %v, want an *HTTPError", err)
			assert.Equal(t, status, he.StatusCode)
			assert.Contains(t, err.Error(), "redirects are not followed")
			assert.NotContains(t, err.Error(), "SECRET", "the Location's query string is redacted")
			assert.Zero(t, followed.Load(), "requests to the redirect's target")
		})
	}
}

// A token in the sink URL's query string or user information never shows in a delivery error,
// whatever the failure: an answer, a refused connection, a timeout.
func TestHTTPErrorsNeverShowTheURLsSecrets(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		return "http://user:PASSWORD-SECRET@" + l.Addr().String() + "/events?token=QUERY-SECRET"
	}
	failing := func(t *testing.T) string {
		srv := answer(t, 500, "down")
		return strings.Replace(srv.URL, "http://", "http://user:PASSWORD-SECRET@", 1) + "/events?token=QUERY-SECRET&x=1"
	}
	for _, tt := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"a refused connection (a *url.Error, which prints its URL)", refused},
		{"a 500 answer", failing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newHTTPSink(t, HTTPConfig{URL: tt.url(t)}, false)
			err := s.Deliver(context.Background(), testBatch("1", 1))
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "SECRET")
			assert.Contains(t, err.Error(), "/events?REDACTED", "the error still says where the call went")
			if strings.Contains(tt.name, "refused") {
				var op *net.OpError
				assert.True(t, errors.As(err, &op), "the redacted error keeps its chain: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://h.example/events", "https://h.example/events"},
		{"https://h.example/events?token=s3cret&a=b", "https://h.example/events?REDACTED"},
		{"https://alice:s3cret@h.example:8443/x", "https://REDACTED@h.example:8443/x"},
		{"https://h.example/x?", "https://h.example/x?REDACTED"},
		{"https://h.example/x#frag-s3cret", "https://h.example/x"},
		{"http://[::1]:80/%zz?s3cret", "REDACTED (an unparsable URL)"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
