package queue

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opencensus.io/trace"
	netheader "knative.dev/networking/pkg/http/header"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// ProxyHandler is the queue layer in front of the user container
// (CONTRACT.md §3.3). For each request it:
//
//   - passes kubelet probes (User-Agent kube-probe/… or a K-Kubelet-Probe
//     header) straight to next: no stats, no breaker, no Host rewrite;
//   - records the request in stats from entry to exit (so concurrency includes
//     time queued in the breaker), as proxied when K-Proxy-Request is
//     "activator";
//   - moves K-Original-Host into Host;
//   - admits it through breaker (nil = unlimited) before calling next.
//
// With tracingEnabled, a request whose context carries a sampled span (the
// server span) gets Knative 1.15's spans (see NewProxyHandler for another
// generation's names): a child span queue_proxy for the whole handler and,
// with a breaker, a child of that, queue_wait, which ends when the breaker
// admits or rejects the request; the upstream call is a child of
// queue_proxy, beside queue_wait. Unsampled requests, and requests without
// a span (probes), get no spans. With tracingEnabled false no span code runs.
//
// On breaker rejection it writes 503 with the error text (`pending request
// queue full`, or `context deadline exceeded` when an outer layer set a
// deadline); when the wait was cancelled (client gone, or the timeout handler
// already answered) it writes a bare 500, which the timeout writer swallows.
func ProxyHandler(breaker *Breaker, stats *netstats.RequestStats, tracingEnabled bool, next http.Handler) http.Handler {
	var spans SpanNames
	if tracingEnabled {
		spans = SpanNames{Proxy: spanQueueProxy, Wait: spanQueueWait}
	}
	return NewProxyHandler(breaker, stats, spans, next)
}

// SpanNames names ProxyHandler's spans: Proxy for the whole queue layer,
// Wait (a child of Proxy) for the wait in the breaker. UpstreamUnderWait
// makes the upstream call a child of Wait, as in Knative's newest
// generation (the request passed on carries the Wait span, ended); in 1.15
// it is a child of Proxy.
type SpanNames struct {
	Proxy, Wait       string
	UpstreamUnderWait bool
}

// NewProxyHandler is ProxyHandler with the spans named by spans (an empty
// Proxy name: no spans, no span code runs). The Wait span ends when the
// breaker admits or rejects the request.
func NewProxyHandler(breaker *Breaker, stats *netstats.RequestStats, spans SpanNames, next http.Handler, opts ...ProxyOption) http.Handler {
	h := &proxyHandler{breaker: breaker, stats: stats, spans: spans, next: next, now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ProxyOption adjusts NewProxyHandler's handler.
type ProxyOption func(*proxyHandler)

// ObserveQueue makes the handler tell a QueueObserver how each request
// (kubelet probes aside) fared: it looks for one in the Unwrap chain of the
// ResponseWriter it is given (pkghttp.FindWriter), once per request.
// Without this option it never looks.
func ObserveQueue() ProxyOption { return func(h *proxyHandler) { h.observe = true } }

// QueueObserver is told how a request fared in the queue layer. It is
// implemented by a ResponseWriter of an outer layer (see ObserveQueue);
// its methods are called on the request's goroutine.
type QueueObserver interface {
	// QueueDone: the breaker admitted the request or rejected it (queue
	// full, deadline, cancelled), after waiting wait. Without a breaker:
	// admitted at once.
	QueueDone(wait time.Duration, admitted bool)
	// UpstreamDone: the handler after the queue layer (the user container's)
	// returned, d after admission.
	UpstreamDone(d time.Duration)
}

// activatorProxyValue is the K-Proxy-Request value the activator sets on
// the requests it forwards.
const activatorProxyValue = "activator"

// The spans ProxyHandler creates, named as in Knative 1.15.
const (
	spanQueueProxy = "queue_proxy"
	spanQueueWait  = "queue_wait"
)

type proxyHandler struct {
	breaker *Breaker
	stats   *netstats.RequestStats
	spans   SpanNames
	next    http.Handler
	now     func() time.Time
	observe bool // look for a QueueObserver
}

// leave records the request's out event at *at, when the next handler
// returned (zero if it panicked: now).
func (h *proxyHandler) leave(t netstats.ReqEventType, at *time.Time) {
	if at.IsZero() {
		*at = h.now()
	}
	h.stats.HandleEvent(netstats.ReqEvent{Time: *at, Type: t})
}

// observed is the request's QueueObserver, if observing, and its entry
// time; its methods do nothing without an observer.
type observed struct {
	o        QueueObserver
	now      func() time.Time
	admitted time.Time
}

// queueDone reports the wait from in to at (zero: now).
func (o *observed) queueDone(in, at time.Time, admitted bool) {
	if o.o == nil {
		return
	}
	if at.IsZero() {
		at = o.now()
	}
	o.admitted = at
	o.o.QueueDone(at.Sub(in), admitted)
}

// upstreamDone reports the time from admission to at.
func (o *observed) upstreamDone(at time.Time) {
	if o.o != nil {
		o.o.UpstreamDone(at.Sub(o.admitted))
	}
}

func (h *proxyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if netheader.IsKubeletProbe(r) {
		h.next.ServeHTTP(w, r)
		return
	}

	in, out := netstats.ReqIn, netstats.ReqOut
	if netheader.GetKnativeProxyValue(r) == activatorProxyValue {
		in, out = netstats.ProxiedIn, netstats.ProxiedOut
	}
	entered := h.now()
	h.stats.HandleEvent(netstats.ReqEvent{Time: entered, Type: in})
	var left time.Time // when next returned: one clock reading for the out event and the observer
	defer h.leave(out, &left)
	var obs observed
	if h.observe {
		obs.o, _ = pkghttp.FindWriter[QueueObserver](w)
		obs.now = h.now
	}

	var traced bool
	if h.spans.Proxy != "" {
		if parent := trace.FromContext(r.Context()); parent != nil && parent.IsRecordingEvents() {
			ctx, span := trace.StartSpan(r.Context(), h.spans.Proxy)
			defer span.End()
			r, traced = r.WithContext(ctx), true
		}
	}

	netheader.RewriteHostOut(r)

	if h.breaker == nil {
		obs.queueDone(entered, entered, true) // no queue: admitted as it entered
		h.next.ServeHTTP(w, r)
		left = h.now()
		obs.upstreamDone(left)
		return
	}
	var wait *trace.Span
	if traced {
		var ctx context.Context
		ctx, wait = trace.StartSpan(r.Context(), h.spans.Wait)
		if h.spans.UpstreamUnderWait {
			r = r.WithContext(ctx)
		}
	}
	err := h.breaker.Acquire(r.Context())
	if wait != nil {
		wait.End()
	}
	obs.queueDone(entered, time.Time{}, err == nil)
	if err != nil {
		switch {
		case errors.Is(err, ErrRequestQueueFull), errors.Is(err, context.DeadlineExceeded):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
		return
	}
	defer h.breaker.Release()
	h.next.ServeHTTP(w, r)
	left = h.now()
	obs.upstreamDone(left)
}
