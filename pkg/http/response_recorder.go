package http

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
)

// ResponseRecorder wraps a ResponseWriter to record the status code and the
// number of body bytes written, for the request log and request metrics.
//
//   - ResponseCode starts at the code given to NewResponseRecorder (200 in
//     practice: a handler that never calls WriteHeader answers 200) and takes
//     the first final status written; 1xx informational codes are passed on
//     without being recorded.
//   - ResponseSize counts the bytes the handler wrote.
//   - After a successful Hijack, WriteHeader is ignored (the connection is
//     no longer an HTTP response; Knative fixed its inverted flag in #16611).
//   - Flush and Hijack pass through when the wrapped writer supports them;
//     Unwrap exposes it to http.ResponseController.
type ResponseRecorder struct {
	ResponseCode int
	ResponseSize int64

	writer      http.ResponseWriter
	wroteHeader bool
	hijacked    atomic.Bool
}

var (
	_ http.Flusher  = (*ResponseRecorder)(nil)
	_ http.Hijacker = (*ResponseRecorder)(nil)
)

// NewResponseRecorder returns a recorder around w whose code is responseCode
// until the handler writes a status.
func NewResponseRecorder(w http.ResponseWriter, responseCode int) *ResponseRecorder {
	return &ResponseRecorder{writer: w, ResponseCode: responseCode}
}

// Reset re-arms a recorder (for pooling) around w.
func (rr *ResponseRecorder) Reset(w http.ResponseWriter, responseCode int) {
	rr.writer, rr.ResponseCode, rr.ResponseSize, rr.wroteHeader = w, responseCode, 0, false
	rr.hijacked.Store(false)
}

// Header implements http.ResponseWriter.
func (rr *ResponseRecorder) Header() http.Header { return rr.writer.Header() }

// Write implements http.ResponseWriter.
func (rr *ResponseRecorder) Write(p []byte) (int, error) {
	rr.wroteHeader = true
	n, err := rr.writer.Write(p)
	rr.ResponseSize += int64(n)
	return n, err
}

// WriteHeader implements http.ResponseWriter.
func (rr *ResponseRecorder) WriteHeader(code int) {
	if rr.hijacked.Load() {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		rr.writer.WriteHeader(code)
		return
	}
	if !rr.wroteHeader {
		rr.wroteHeader = true
		rr.ResponseCode = code
	}
	rr.writer.WriteHeader(code)
}

// Flush implements http.Flusher.
func (rr *ResponseRecorder) Flush() {
	rr.wroteHeader = true
	if f, ok := rr.writer.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker.
func (rr *ResponseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rr.writer.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := h.Hijack()
	if err == nil {
		rr.hijacked.Store(true)
	}
	return c, rw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (rr *ResponseRecorder) Unwrap() http.ResponseWriter { return rr.writer }
