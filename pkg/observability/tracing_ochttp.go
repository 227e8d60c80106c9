package observability

import (
	"bufio"
	"net"
	"net/http"

	"go.opencensus.io/trace"
)

// serveOCHTTP serves a sampled request under span as ochttp's handler
// does (Knative 1.15): the span named by the URL path with ochttp's request
// attributes and a "received" message event for a request body of known
// length; a "sent" message event for every body write; at the end (a panic
// included) http.status_code and the status of the last status written,
// 200 when none was.
func serveOCHTTP(next http.Handler, w http.ResponseWriter, r *http.Request, span *trace.Span) {
	span.SetName(r.URL.Path)
	span.AddAttributes(ochttpAttrs(make([]trace.Attribute, 0, 6), r, r.Host)...)
	if r.Body != nil && r.ContentLength > 0 {
		span.AddMessageReceiveEvent(0, r.ContentLength, -1)
	}
	ow := &ochttpWriter{w: w, span: span}
	defer func() {
		code := ow.code
		if code == 0 {
			code = http.StatusOK
		}
		span.AddAttributes(trace.Int64Attribute(attrOCStatusCode, int64(code)))
		span.SetStatus(ochttpStatus(code))
		span.End()
	}()
	next.ServeHTTP(ow, r)
}

// ochttpWriter records what ochttp's tracking writer records: the last
// status written (1xx included) and a message event per body write. Flush,
// Hijack and Unwrap pass through.
type ochttpWriter struct {
	w    http.ResponseWriter
	span *trace.Span
	code int
}

var (
	_ http.Flusher  = (*ochttpWriter)(nil)
	_ http.Hijacker = (*ochttpWriter)(nil)
)

func (o *ochttpWriter) Header() http.Header { return o.w.Header() }

func (o *ochttpWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.span.AddMessageSendEvent(0, int64(n), -1)
	return n, err
}

func (o *ochttpWriter) WriteHeader(code int) {
	o.w.WriteHeader(code)
	o.code = code
}

func (o *ochttpWriter) Flush() {
	if f, ok := o.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (o *ochttpWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := o.w.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, http.ErrNotSupported
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (o *ochttpWriter) Unwrap() http.ResponseWriter { return o.w }
