// Package health answers queue-proxy health probes and holds the TCP, HTTP
// and gRPC probe functions used for readiness.
package health

import (
	"net/http"

	"knative.dev/networking/pkg/http/header"
)

// queueProbeValue is the K-Network-Probe value of queue-proxy health checks,
// and the body of a healthy answer (the container name, queue.Name).
const queueProbeValue = "queue"

// Preallocated parts of the healthy answer. The header value slices are
// shared by every response; net/http and the layers around this handler
// replace or clone header values, never write into them.
var (
	healthyBody          = []byte(queueProbeValue)
	healthyContentType   = []string{"text/plain; charset=utf-8"}
	healthyContentLength = []string{"5"} // len(healthyBody)
)

// ProbeHandler answers queue-proxy health probes (kubelet, activator,
// autoscaler) from the result of prober.
//
//   - K-Network-Probe (first value) other than "queue": 400 with body
//     "unexpected probe header value: <value>\n".
//   - prober nil: 500 "no probe\n".
//   - prober() false: 503 with an empty body.
//   - prober() true: 200 with body "queue" (text/plain; charset=utf-8,
//     Content-Length 5).
//
// Error bodies are written with http.Error. prober runs synchronously on
// every request.
func ProbeHandler(prober func() bool) http.Handler {
	return &probeHandler{prober: prober}
}

type probeHandler struct {
	prober func() bool
}

func (h *probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answerProbe(h.prober, w, r)
}

// Failure texts of answerProbe other than the bad-header one.
const (
	noProbeFailure  = "no probe"
	notReadyFailure = "container not ready"
)

// answerProbe writes ProbeHandler's answer to r and returns the failure's
// text without a trailing newline: "unexpected probe header value: <value>",
// noProbeFailure or notReadyFailure; "" when the answer is 200. It allocates
// only what the answer itself needs.
func answerProbe(prober func() bool, w http.ResponseWriter, r *http.Request) (failure string) {
	var v string
	if vs := r.Header[header.ProbeKey]; len(vs) != 0 {
		v = vs[0]
	}
	if v != queueProbeValue {
		failure = "unexpected probe header value: " + v
		http.Error(w, failure, http.StatusBadRequest)
		return failure
	}
	if prober == nil {
		http.Error(w, noProbeFailure, http.StatusInternalServerError)
		return noProbeFailure
	}
	if !prober() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return notReadyFailure
	}
	hdr := w.Header()
	hdr["Content-Type"] = healthyContentType
	hdr["Content-Length"] = healthyContentLength
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(healthyBody)
	return ""
}
