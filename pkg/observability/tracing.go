package observability

import (
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opencensus.io/trace"
	netheader "knative.dev/networking/pkg/http/header"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// Span names and attributes. The server and client spans are named
// "<METHOD> <path>" (e.g. "GET /api/items") so that a trace says what
// happened (pkg/queue's ProxyHandler adds queue_proxy and queue_wait).
const (
	// unnamedSpan is the name a span starts with; sampled spans are renamed
	// at once, so the string concatenation is paid only for them.
	unnamedSpan = "HTTP"

	attrMethod     = "http.method"
	attrPath       = "http.path"
	attrHost       = "http.host"
	attrUserAgent  = "http.user_agent"
	attrURL        = "http.url"
	attrStatusCode = "http.status_code"
)

// LegacySampler is Knative 1.15's sampler (TRACING_CONFIG_*): always with
// debug, else OpenCensus' probability sampler, which also samples every
// request whose incoming trace context says sampled.
func LegacySampler(rate float64, debug bool) trace.Sampler {
	if debug {
		return trace.AlwaysSample()
	}
	return trace.ProbabilitySampler(rate)
}

// ParentBasedSampler is the newest generation's sampler for samplingRate
// (CONTRACT.md §5.6): a rate >= 1 samples everything, a rate <= 0 nothing;
// otherwise an incoming trace context decides (sampled or not), and a new
// trace is sampled with probability rate.
func ParentBasedSampler(rate float64) trace.Sampler {
	switch {
	case rate >= 1:
		return trace.AlwaysSample()
	case !(rate > 0):
		return trace.NeverSample()
	}
	ratio := trace.ProbabilitySampler(rate)
	return func(p trace.SamplingParameters) trace.SamplingDecision {
		if p.ParentContext.TraceID != (trace.TraceID{}) {
			return trace.SamplingDecision{Sample: p.ParentContext.IsSampled()}
		}
		return ratio(p)
	}
}

// ServerSpanHandler starts the server span of every request that is not a
// probe (netheader.IsProbe: kubelet, K-Kubelet-Probe or any K-Network-Probe)
// and passes the request on with the span in its context. An incoming trace
// context (SpanContextFromHeader: traceparent, then B3) becomes its remote
// parent; otherwise it starts a new trace. sampler decides (OpenCensus'
// global default sampler is not used).
//
// An unsampled request costs a span id, a context and a request copy;
// nothing is recorded. A sampled one is named "<METHOD> <path>", gets the
// attributes http.method, http.path, http.host, http.user_agent and
// http.status_code, and an error status for 5xx answers or a panic (the
// panic is not recovered). The span ends when the handler returns.
func ServerSpanHandler(next http.Handler, sampler trace.Sampler) http.Handler {
	h := &serverSpanHandler{
		next: next,
		opts: []trace.StartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithSampler(sampler)},
	}
	h.recorders.New = func() any { return pkghttp.NewResponseRecorder(nil, http.StatusOK) }
	return h
}

type serverSpanHandler struct {
	next      http.Handler
	opts      []trace.StartOption // built once, not per request
	recorders sync.Pool           // of *pkghttp.ResponseRecorder
}

func (h *serverSpanHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if netheader.IsProbe(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	var span *trace.Span
	ctx := r.Context()
	if parent, ok := SpanContextFromHeader(r.Header); ok {
		ctx, span = trace.StartSpanWithRemoteParent(ctx, unnamedSpan, parent, h.opts...)
	} else {
		ctx, span = trace.StartSpan(ctx, unnamedSpan, h.opts...)
	}
	r = r.WithContext(ctx)
	if !span.IsRecordingEvents() {
		h.next.ServeHTTP(w, r)
		span.End()
		return
	}
	h.serveSampled(w, r, span)
}

func (h *serverSpanHandler) serveSampled(w http.ResponseWriter, r *http.Request, span *trace.Span) {
	span.SetName(r.Method + " " + r.URL.Path)
	span.AddAttributes(
		trace.StringAttribute(attrMethod, r.Method),
		trace.StringAttribute(attrPath, r.URL.Path),
		trace.StringAttribute(attrHost, r.Host),
	)
	if ua := r.UserAgent(); ua != "" {
		span.AddAttributes(trace.StringAttribute(attrUserAgent, ua))
	}
	rr := h.recorders.Get().(*pkghttp.ResponseRecorder)
	rr.Reset(w, http.StatusOK)
	returned := false
	defer func() {
		code := rr.ResponseCode
		if !returned {
			code = http.StatusInternalServerError // a panic; net/http answers 500 or drops the connection
		}
		span.AddAttributes(trace.Int64Attribute(attrStatusCode, int64(code)))
		if code >= http.StatusInternalServerError {
			span.SetStatus(trace.Status{Code: trace.StatusCodeUnknown, Message: strconv.Itoa(code)})
		}
		span.End()
		if returned { // after a panic the recorder is dropped, not reused
			rr.Reset(nil, 0)
			h.recorders.Put(rr)
		}
	}()
	h.next.ServeHTTP(rr, r)
	returned = true
}

// SpanTransport wraps base with client spans and trace-context headers for
// requests to the user container. A request whose context carries no span
// (probes, tracing off upstream of it) goes to base untouched. Otherwise
// the outgoing request carries both `traceparent` and `X-B3-*`
// (SetSpanContextHeaders):
//
//   - sampled: a client span "<METHOD> <path>", a child of the span in the
//     context, with http.method, http.url and http.status_code, an error
//     status on a transport error or a status >= 400, ending when the
//     response body is read to its end or closed (at once for 101 Switching
//     Protocols, whose body is the upgraded connection); its context is sent.
//   - unsampled: no span; the context of the span in the request's context
//     is sent, with the sampled flag off.
//
// The caller's request is not modified: the headers go on a shallow copy
// with its own header map.
func SpanTransport(base http.RoundTripper) http.RoundTripper {
	return &spanTransport{base: base, opts: []trace.StartOption{trace.WithSpanKind(trace.SpanKindClient)}}
}

type spanTransport struct {
	base http.RoundTripper
	opts []trace.StartOption
}

// CloseIdleConnections forwards to base, so that callers that close idle
// upstream connections at shutdown still can.
func (t *spanTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *spanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := trace.FromContext(req.Context())
	if parent == nil {
		return t.base.RoundTrip(req)
	}
	if !parent.IsRecordingEvents() {
		return t.base.RoundTrip(withSpanContext(req, parent.SpanContext()))
	}

	_, span := trace.StartSpan(req.Context(), unnamedSpan, t.opts...)
	span.SetName(req.Method + " " + req.URL.Path)
	span.AddAttributes(
		trace.StringAttribute(attrMethod, req.Method),
		trace.StringAttribute(attrURL, req.URL.String()),
	)
	resp, err := t.base.RoundTrip(withSpanContext(req, span.SpanContext()))
	if err != nil {
		span.SetStatus(trace.Status{Code: trace.StatusCodeUnknown, Message: err.Error()})
		span.End()
		return resp, err
	}
	span.AddAttributes(trace.Int64Attribute(attrStatusCode, int64(resp.StatusCode)))
	if resp.StatusCode >= http.StatusBadRequest {
		span.SetStatus(trace.Status{Code: trace.StatusCodeUnknown, Message: strconv.Itoa(resp.StatusCode)})
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// withSpanContext returns a shallow copy of req whose header map is a copy
// of req's with sc's trace headers set. Only the map is copied: the headers
// set replace whole value slices, so req's slices are never written.
func withSpanContext(req *http.Request, sc trace.SpanContext) *http.Request {
	out := req.WithContext(req.Context())
	out.Header = maps.Clone(req.Header)
	if out.Header == nil {
		out.Header = make(http.Header, 4)
	}
	SetSpanContextHeaders(out.Header, sc)
	return out
}

// spanBody ends the client span at the end of the response body or when it
// is closed, whichever comes first.
type spanBody struct {
	io.ReadCloser
	span  *trace.Span
	ended atomic.Bool
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}
