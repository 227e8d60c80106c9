package observability

import (
	"net/http"
	"strings"
	"sync"
	"time"

	netheader "knative.dev/networking/pkg/http/header"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// RequestHandler is the request-metrics layer, placed outside the timeout
// handler: it records revision_request_count and revision_request_latencies
// for every request that is not a probe (netheader.IsProbe), with the
// response code the client got (504 when the timeout handler answered) and
// the request's route tag. Probes pass through unmeasured. It writes nothing
// itself.
func (m *Metrics) RequestHandler(next http.Handler) http.Handler {
	return &metricsHandler{m: m, set: &m.request, routeTag: m.routeTag, next: next}
}

// AppHandler is the app-metrics layer, placed inside the breaker right above
// the reverse proxy: it records revision_app_request_count and
// revision_app_request_latencies for every request that is not a probe, with
// the response code of the user container (or of the proxy's error
// handler). Probes pass through unmeasured. It writes nothing itself.
func (m *Metrics) AppHandler(next http.Handler) http.Handler {
	return &metricsHandler{m: m, set: &m.app, next: next}
}

type metricsHandler struct {
	m        *Metrics
	set      *seriesMap
	routeTag func(*http.Request) string // nil: no route_tag
	next     http.Handler
}

// recorders are pooled: a request's recorder goes back once the handler
// below has returned, after which nothing holds it.
var recorders = sync.Pool{New: func() any { return pkghttp.NewResponseRecorder(nil, http.StatusOK) }}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isProbe(r.Header) {
		h.next.ServeHTTP(w, r)
		return
	}
	var route string
	if h.routeTag != nil {
		route = h.routeTag(r) // before next: inner layers may change headers
	}
	rr := recorders.Get().(*pkghttp.ResponseRecorder)
	rr.Reset(w, http.StatusOK)
	start := h.m.since()

	// A panic below (e.g. http.ErrAbortHandler from the reverse proxy) is
	// recorded as a 500 and goes on up. The recorder is then not pooled: a
	// layer below may not have finished with it.
	returned := false
	defer func() {
		if !returned {
			h.observe(http.StatusInternalServerError, route, start)
		}
	}()
	h.next.ServeHTTP(rr, r)
	returned = true

	code := rr.ResponseCode
	rr.Reset(nil, 0)
	recorders.Put(rr)
	h.observe(code, route, start)
}

// isProbe is netheader.IsProbe (CONTRACT.md §5.4: a User-Agent starting
// with kube-probe/, or a non-empty K-Kubelet-Probe or K-Network-Probe) with
// direct lookups of the canonical keys: Header.Get canonicalises its key on
// every call, which made the check cost more than the rest of a layer.
// TestIsProbe checks that both agree.
func isProbe(h http.Header) bool {
	if v := h["User-Agent"]; len(v) > 0 && strings.HasPrefix(v[0], netheader.KubeProbeUAPrefix) {
		return true
	}
	if v := h[netheader.KubeletProbeKey]; len(v) > 0 && v[0] != "" {
		return true
	}
	v := h[netheader.ProbeKey]
	return len(v) > 0 && v[0] != ""
}

func (h *metricsHandler) observe(code int, route string, start time.Duration) {
	ms := float64(h.m.since()-start) / float64(time.Millisecond)
	h.set.get(code, route).add(h.m, ms)
}
