package health

import (
	"net/http"

	"go.opencensus.io/trace"
)

// Names of Knative 1.15's probe span annotation: its message, and the key of
// its one attribute, which holds the failure's text.
const (
	probeErrorMessage   = "error"
	probeErrorAttribute = "queueproxy.probe.error"
)

// TracedProbeHandler is ProbeHandler with Knative 1.15's probe span. Answers
// (status codes, headers, bodies) are exactly ProbeHandler's.
//
// Every request gets an OpenCensus span named spanName (the caller passes
// "probe"), started with trace.StartSpan on the request's context (kind
// unspecified) and ended when ServeHTTP returns, after the answer is
// written. The span's context is not passed on: prober takes none.
//
// On failure the span gets one annotation with message "error" and the
// string attribute "queueproxy.probe.error" holding the failure's text
// without http.Error's trailing newline: "unexpected probe header value:
// <value>" (400), "no probe" (500) or "container not ready" (503). A 200
// adds no annotation.
//
// Sampling follows OpenCensus' rules for StartSpan, except that the global
// default sampler is never consulted:
//   - with no span in the request context, the span is a root span, sampled
//     if sampler says so (Knative 1.15 used its global sampler, set from
//     the tracing config; pass that config's sampler here);
//   - with a span in the request context, the span is its child (same trace
//     id, parent span id = its span id) and keeps the parent's sampling
//     decision; sampler is not consulted.
//
// A nil sampler samples no root span (as trace.NeverSample); children still
// follow their parent. Spans are exported to the exporters registered with
// trace.RegisterExporter when they end, if sampled.
func TracedProbeHandler(prober func() bool, spanName string, sampler trace.Sampler) http.Handler {
	if sampler == nil {
		sampler = trace.NeverSample()
	}
	return &tracedProbeHandler{
		prober:   prober,
		spanName: spanName,
		rootOpts: []trace.StartOption{trace.WithSampler(sampler)},
	}
}

// tracedProbeHandler is TracedProbeHandler's handler. rootOpts is built once
// so starting a root span allocates no option closure or slice.
type tracedProbeHandler struct {
	prober   func() bool
	spanName string
	rootOpts []trace.StartOption
}

func (h *tracedProbeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, span := trace.StartSpan(r.Context(), h.spanName, h.startOptions(r)...)
	defer span.End()

	failure := answerProbe(h.prober, w, r)
	if failure != "" && span.IsRecordingEvents() {
		span.Annotate([]trace.Attribute{trace.StringAttribute(probeErrorAttribute, failure)}, probeErrorMessage)
	}
}

// startOptions returns the options of r's span: none for a child, so that
// OpenCensus keeps the parent's sampling decision, else rootOpts. Like
// trace.StartSpan, it takes a span in the context whose SpanContext is zero
// for no parent.
func (h *tracedProbeHandler) startOptions(r *http.Request) []trace.StartOption {
	if p := trace.FromContext(r.Context()); p != nil && p.SpanContext() != (trace.SpanContext{}) {
		return nil
	}
	return h.rootOpts
}
