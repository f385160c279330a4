package streamstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const (
	streamsTarget  = "DynamoDBStreams_20120810"
	dynamodbTarget = "DynamoDB_20120810"
	contentType    = "application/x-amz-json-1.0"
	maxRequestBody = 1 << 20
)

// call is one request being answered.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	op    Op
	n     int
	hook  FaultFunc
	reqID string
	body  []byte
}

// ServeHTTP routes by X-Amz-Target: DynamoDB Streams calls are answered here, DescribeTable of a
// table with a stream here too, everything else goes upstream.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	service, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	c := &call{w: w, r: r, op: Op(name)}
	c.n, c.hook, c.reqID = s.begin(c.op)
	if service == streamsTarget || (service == dynamodbTarget && c.op == OpDescribeTable) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err != nil {
			s.writeError(c, apiError(http.StatusBadRequest, "SerializationException", "read request body: %v", err))
			return
		}
		c.body = body
		if service == streamsTarget {
			s.serveStreams(c)
			return
		}
		if s.serveDescribeTable(c) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	s.forward(c)
}

func (s *Server) serveStreams(c *call) {
	switch c.op {
	case OpDescribeStream:
		s.describeStream(c)
	case OpGetShardIterator:
		s.getShardIterator(c)
	case OpGetRecords:
		s.getRecords(c)
	case OpListStreams:
		s.listStreams(c)
	default:
		s.writeError(c, apiError(http.StatusBadRequest, "UnknownOperationException", "streamstest does not serve %s.%s", streamsTarget, c.op))
	}
}

// decode reads the request body into in; false means an error answer was sent.
func (s *Server) decode(c *call, in any) bool {
	if len(bytes.TrimSpace(c.body)) == 0 {
		c.body = []byte("{}")
	}
	if err := json.Unmarshal(c.body, in); err != nil {
		s.writeError(c, apiError(http.StatusBadRequest, "SerializationException", "decode %s input: %v", c.op, err))
		return false
	}
	return true
}

// runHook applies the operation's fault hook; false means an error answer was sent. emptyPage
// reports an EmptyPage answer.
func (s *Server) runHook(c *call, req Request) (ok, emptyPage bool) {
	if c.hook == nil {
		return true, false
	}
	req.Op, req.Call, req.ctx = c.op, c.n, c.r.Context()
	err := c.hook(req)
	switch {
	case err == nil:
		return true, false
	case errors.Is(err, errEmptyPage):
		return true, true
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		apiErr = apiError(http.StatusInternalServerError, "InternalServerError", "%v", err)
	}
	s.writeError(c, apiErr)
	return false, false
}

func (s *Server) writeJSON(c *call, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(c, apiError(http.StatusInternalServerError, "InternalServerError", "encode %s output: %v", c.op, err))
		return
	}
	s.writeBody(c, http.StatusOK, b)
}

func (s *Server) writeError(c *call, e *APIError) {
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.wireType(), e.Message})
	s.writeBody(c, e.Status, b)
}

// writeBody sends an answer with the headers the real service sends, the CRC32 that the DynamoDB
// client checks among them.
func (s *Server) writeBody(c *call, status int, b []byte) {
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10))
	h.Set("X-Amzn-Requestid", c.reqID)
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b) // the client went away; nothing to do
}

// forward sends the request upstream, after the operation's hook.
func (s *Server) forward(c *call) {
	if ok, _ := s.runHook(c, Request{}); !ok {
		return
	}
	if s.proxy == nil {
		s.writeError(c, apiError(http.StatusBadRequest, "UnknownOperationException",
			"streamstest has no Options.Upstream to forward %s to", c.r.Header.Get("X-Amz-Target")))
		return
	}
	s.proxy.ServeHTTP(c.w, c.r)
}

func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	c := &call{w: w, r: r, op: Op(r.Header.Get("X-Amz-Target"))}
	s.writeError(c, apiError(http.StatusInternalServerError, "InternalServerError", "streamstest: forward upstream: %v", err))
}
