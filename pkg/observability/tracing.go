package observability

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"

	"go.opencensus.io/trace"
	netheader "knative.dev/networking/pkg/http/header"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// unnamedSpan is the name a span starts with; sampled spans are renamed at
// once, so building the name is paid only for them.
const unnamedSpan = "HTTP"

// LegacySampler is Knative 1.15's sampler (TRACING_CONFIG_*): always with
// debug, else OpenCensus' probability sampler, which also samples every
// request whose incoming trace context says sampled.
func LegacySampler(rate float64, debug bool) trace.Sampler {
	if debug {
		return trace.AlwaysSample()
	}
	return trace.ProbabilitySampler(rate)
}

// ServerSpanHandler starts the server span of a request, in the
// generation's conventions (spans.HTTP, tracing_attrs.go), and passes the
// request on with the span in its context. sampler decides (OpenCensus'
// global default sampler is not used). routeTag, when not nil, gives the
// semantic-convention span its kn.route.tag attribute.
//
//   - SpansSemConv: no span for probes (netheader.IsProbe); the incoming
//     W3C traceparent (TraceparentFromHeader) is the remote parent.
//   - SpansOCHTTP: no span for /healthz and /_ah/health; the incoming
//     traceparent, else B3 (SpanContextFromHeader), is the remote parent.
//
// An unsampled request costs a span id, a context and a request copy;
// nothing is recorded. A sampled one is named and attributed at the start,
// gets the response's attributes and status when the handler returns, and
// an error status for a panic (which is not recovered).
func ServerSpanHandler(next http.Handler, sampler trace.Sampler, spans Spans, routeTag func(*http.Request) string) http.Handler {
	h := &serverSpanHandler{
		next:     next,
		opts:     []trace.StartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithSampler(sampler)},
		semconv:  spans.HTTP == SpansSemConv,
		routeTag: routeTag,
	}
	h.recorders.New = func() any { return pkghttp.NewResponseRecorder(nil, http.StatusOK) }
	return h
}

type serverSpanHandler struct {
	next      http.Handler
	opts      []trace.StartOption // built once, not per request
	semconv   bool
	routeTag  func(*http.Request) string
	recorders sync.Pool // of *pkghttp.ResponseRecorder
}

func (h *serverSpanHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var parent trace.SpanContext
	var remote bool
	if h.semconv {
		if netheader.IsProbe(r) {
			h.next.ServeHTTP(w, r)
			return
		}
		parent, remote = TraceparentFromHeader(r.Header)
	} else {
		if ochttpUntraced(r.URL.Path) {
			h.next.ServeHTTP(w, r)
			return
		}
		parent, remote = SpanContextFromHeader(r.Header)
	}
	var span *trace.Span
	ctx := r.Context()
	if remote {
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
	if !h.semconv {
		serveOCHTTP(h.next, w, r, span)
		return
	}
	span.SetName(semconvServerName(r.Method))
	attrs := semconvServerAttrs(make([]trace.Attribute, 0, 16), r)
	if h.routeTag != nil {
		attrs = append(attrs, stringAttr(boxedRouteTags, attrRouteTag, h.routeTag(r)))
	}
	span.AddAttributes(attrs...)
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
		defer func() { r.Body = body.ReadCloser }()
	}
	rr := h.recorders.Get().(*pkghttp.ResponseRecorder)
	rr.Reset(w, http.StatusOK)
	returned := false
	defer func() {
		if !returned {
			// As the SDK ends a span during a panic: an "exception" event,
			// no response attributes, status unset; the panic goes on (the
			// recorder is dropped, not reused).
			p := recover()
			span.Annotate([]trace.Attribute{
				trace.StringAttribute("exception.type", panicType(p)),
				trace.StringAttribute("exception.message", fmt.Sprint(p)),
			}, "exception")
			span.End()
			panic(p)
		}
		var read int64
		if body != nil {
			read = body.n.Load()
		}
		span.AddAttributes(semconvServerResponseAttrs(make([]trace.Attribute, 0, 3), read, rr.ResponseSize, rr.ResponseCode)...)
		span.SetStatus(semconvServerStatus(rr.ResponseCode))
		span.End()
		rr.Reset(nil, 0)
		h.recorders.Put(rr)
	}()
	h.next.ServeHTTP(rr, r)
	returned = true
}

// SpanTransport wraps base with client spans and trace-context headers for
// requests to the user container, in the generation's conventions. A
// request whose context carries no span (a probe the server span skipped
// but the drainer passed on, e.g. one with K-Kubelet-Probe) gets a root
// client span decided by sampler, as otelhttp's transport starts one; with
// a nil sampler it goes to base untouched, as does one for /healthz or
// /_ah/health under SpansOCHTTP. Otherwise the outgoing request carries
// the trace context (spans.Propagation: traceparent and B3, or traceparent
// and tracestate only):
//
//   - sampled: a client span, a child of the span in the context, named,
//     attributed and given a status as its convention says
//     (tracing_attrs.go), ending when the response body is read to its end
//     or closed (at once for 101 Switching Protocols, whose body is the
//     upgraded connection, and for a response without a body); its context
//     is sent.
//   - unsampled: no span; the context of an unrecorded child of the span in
//     the request's context is sent (a new span id, the sampled flag off).
//
// The caller's request is not modified: the headers go on a shallow copy
// with its own header map.
func SpanTransport(base http.RoundTripper, spans Spans, sampler trace.Sampler) http.RoundTripper {
	t := &spanTransport{
		base:    base,
		opts:    []trace.StartOption{trace.WithSpanKind(trace.SpanKindClient)},
		semconv: spans.HTTP == SpansSemConv,
		w3cOnly: spans.Propagation == PropagateW3C,
	}
	if sampler != nil {
		t.rootOpts = []trace.StartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithSampler(sampler)}
	}
	return t
}

type spanTransport struct {
	base     http.RoundTripper
	opts     []trace.StartOption
	rootOpts []trace.StartOption // nil: requests without a span pass untouched
	semconv  bool
	w3cOnly  bool
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
	if !t.semconv && ochttpUntraced(req.URL.Path) {
		return t.base.RoundTrip(req)
	}
	var span *trace.Span
	switch {
	case parent == nil && t.rootOpts == nil:
		return t.base.RoundTrip(req)
	case parent == nil:
		_, span = trace.StartSpan(req.Context(), unnamedSpan, t.rootOpts...)
		if !span.IsRecordingEvents() {
			return t.base.RoundTrip(t.withSpanContext(req, span.SpanContext()))
		}
	case !parent.IsRecordingEvents():
		return t.base.RoundTrip(t.withSpanContext(req, unrecordedChild(parent.SpanContext())))
	default:
		_, span = trace.StartSpan(req.Context(), unnamedSpan, t.opts...)
	}
	if t.semconv {
		span.SetName(semconvClientName(req.Method))
		span.AddAttributes(semconvClientAttrs(make([]trace.Attribute, 0, 8), req)...)
	} else {
		span.SetName(req.URL.Path)
		span.AddAttributes(ochttpAttrs(make([]trace.Attribute, 0, 6), req, req.Host)...)
	}
	resp, err := t.base.RoundTrip(t.withSpanContext(req, span.SpanContext()))
	if err != nil {
		if t.semconv {
			span.AddAttributes(trace.StringAttribute(attrErrorType, spanErrorType(err)))
		}
		span.SetStatus(trace.Status{Code: trace.StatusCodeUnknown, Message: err.Error()})
		span.End()
		return resp, err
	}
	if t.semconv {
		span.AddAttributes(semconvClientResponseAttrs(make([]trace.Attribute, 0, 3), resp)...)
		span.SetStatus(semconvClientStatus(resp.StatusCode))
	} else {
		span.AddAttributes(trace.Int64Attribute(attrOCStatusCode, int64(resp.StatusCode)))
		span.SetStatus(ochttpStatus(resp.StatusCode))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span, semconv: t.semconv}
	return resp, nil
}

// unrecordedChild is the context of an unsampled child of parent: a new
// span id, the rest inherited. ochttp and the OpenTelemetry SDK both start
// such a child for the client call and send its id; creating no span saves
// the allocations of one that would record nothing.
func unrecordedChild(parent trace.SpanContext) trace.SpanContext {
	for {
		binary.BigEndian.PutUint64(parent.SpanID[:], rand.Uint64())
		if parent.SpanID != (trace.SpanID{}) {
			return parent
		}
	}
}

// withSpanContext returns a shallow copy of req whose header map is a copy
// of req's with sc's trace headers set. Only the map is copied: the headers
// set replace whole value slices, so req's slices are never written.
func (t *spanTransport) withSpanContext(req *http.Request, sc trace.SpanContext) *http.Request {
	out := req.WithContext(req.Context())
	out.Header = maps.Clone(req.Header)
	if out.Header == nil {
		out.Header = make(http.Header, 4)
	}
	if t.w3cOnly {
		SetTraceparent(out.Header, sc)
	} else {
		SetSpanContextHeaders(out.Header, sc)
	}
	return out
}

// spanBody ends the client span when the response body is read to its end
// or closed, whichever comes first; a read error other than io.EOF marks the
// span as failed (and, under the semantic conventions, gives it error.type),
// as both otelhttp and ochttp do.
type spanBody struct {
	io.ReadCloser
	span    *trace.Span
	semconv bool
	ended   atomic.Bool
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.end()
	case err != nil && !b.ended.Load():
		if b.semconv {
			b.span.AddAttributes(trace.StringAttribute(attrErrorType, spanErrorType(err)))
		}
		b.span.SetStatus(trace.Status{Code: trace.StatusCodeUnknown, Message: err.Error()})
	}
	return n, err
}

func (b *spanBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}
