package queue

import (
	"context"
	"errors"
	"net/http"
	"time"

	netheader "knative.dev/networking/pkg/http/header"
	netstats "knative.dev/networking/pkg/http/stats"
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
// On breaker rejection it writes 503 with the error text (`pending request
// queue full`, or `context deadline exceeded` when an outer layer set a
// deadline); when the wait was cancelled (client gone, or the timeout handler
// already answered) it writes a bare 500, which the timeout writer swallows.
func ProxyHandler(breaker *Breaker, stats *netstats.RequestStats, next http.Handler) http.Handler {
	return &proxyHandler{breaker: breaker, stats: stats, next: next, now: time.Now}
}

// activatorProxyValue is the K-Proxy-Request value the activator sets on
// the requests it forwards.
const activatorProxyValue = "activator"

type proxyHandler struct {
	breaker *Breaker
	stats   *netstats.RequestStats
	next    http.Handler
	now     func() time.Time
}

func (h *proxyHandler) event(t netstats.ReqEventType) {
	h.stats.HandleEvent(netstats.ReqEvent{Time: h.now(), Type: t})
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
	h.event(in)
	defer h.event(out) // not HandleEvent(...) directly: its argument would be evaluated now

	netheader.RewriteHostOut(r)

	if h.breaker == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	if err := h.breaker.Acquire(r.Context()); err != nil {
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
}
