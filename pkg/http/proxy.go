// Package http holds the HTTP pieces of the queue-proxy's request path that
// are not queue-specific: the header-pruning reverse proxy to the user
// container, its error handler and its transport.
//
// Import it as pkghttp; the package name mirrors Knative Serving's pkg/http.
package http

import (
	"net/http"
	"net/http/httputil"

	"knative.dev/networking/pkg/http/header"
	"knative.dev/networking/pkg/http/proxy"
)

// NoHostOverride, passed as hostOverride to NewHeaderPruningReverseProxy,
// keeps the inbound Host header.
const NoHostOverride = ""

// RevisionHeaders are the request headers the queue-proxy prunes before a
// request reaches the user container (CONTRACT.md §3.2). The activator sets
// them to route the request; the application must not see them.
var RevisionHeaders = []string{
	"Knative-Serving-Revision",
	"Knative-Serving-Namespace",
}

// passthroughValue is the value of the K-Passthrough-Lb header set when the
// Host is overridden.
const passthroughValue = "true"

// NewHeaderPruningReverseProxy returns a Director-mode reverse proxy to
// target (host:port) that:
//
//   - sets the URL scheme to "http", or "https" when useHTTPS, and the URL
//     host to target, keeping the path and the query;
//   - keeps the inbound Host header when hostOverride is NoHostOverride,
//     otherwise sets Host to hostOverride and adds K-Passthrough-Lb: true;
//   - deletes every header named in headersToRemove (matched canonically).
//
// Everything else is httputil.ReverseProxy's Director-mode behaviour, which
// the contract requires: hop-by-hop headers are removed (Te: trailers is
// kept), the client IP is appended to X-Forwarded-For, an absent User-Agent
// stays absent, 1xx responses are forwarded, streamed responses are flushed
// and upgrades (101) are spliced. Forwarded and X-Forwarded-* headers the
// client sent are passed on, unlike in Rewrite mode.
//
// The proxy uses Knative's 32 KiB buffer pool and flush interval. Transport
// and ErrorHandler are left for the caller to set (see NewProxyTransport and
// ErrorHandler); a nil Transport means http.DefaultTransport.
func NewHeaderPruningReverseProxy(target, hostOverride string, headersToRemove []string, useHTTPS bool) *httputil.ReverseProxy {
	d := &director{
		scheme:       "http",
		target:       target,
		hostOverride: hostOverride,
		remove:       make([]string, len(headersToRemove)),
	}
	if useHTTPS {
		d.scheme = "https"
	}
	for i, h := range headersToRemove {
		d.remove[i] = http.CanonicalHeaderKey(h)
	}
	return &httputil.ReverseProxy{
		Director:      d.direct,
		BufferPool:    proxy.NewBufferPool(),
		FlushInterval: proxy.FlushInterval,
	}
}

// director rewrites the outbound request. All strings are fixed when the
// proxy is built, so direct does no string work of its own per request.
type director struct {
	scheme       string
	target       string
	hostOverride string
	remove       []string // canonical header keys
}

func (d *director) direct(r *http.Request) {
	r.URL.Scheme = d.scheme
	r.URL.Host = d.target
	if d.hostOverride != NoHostOverride {
		r.Host = d.hostOverride
		r.Header[header.PassthroughLoadbalancingKey] = []string{passthroughValue}
	}
	for _, k := range d.remove {
		delete(r.Header, k)
	}
}
