package http

import (
	"net/http"

	"knative.dev/pkg/network"
)

// defaultIdleConns is the idle pool size when the container concurrency is
// unlimited (0).
const defaultIdleConns = 1000

// NewProxyTransport returns the transport from the queue-proxy to the user
// container (CONTRACT.md §3.2): knative.dev/pkg/network's auto transport,
// which speaks h2c when the inbound request is HTTP/2 (r.ProtoMajor == 2)
// and HTTP/1.1 otherwise, never adds Accept-Encoding or decodes bodies
// (DisableCompression), and retries only dial timeouts.
//
// Both MaxIdleConns and MaxIdleConnsPerHost are cc, the container
// concurrency, so every request the breaker admits can reuse a connection;
// cc <= 0 (unlimited) means 1000.
//
// The returned RoundTripper has no CloseIdleConnections method: its idle
// connections last until the peer closes them or the underlying transport
// times them out.
func NewProxyTransport(cc int) http.RoundTripper {
	n := cc
	if n <= 0 {
		n = defaultIdleConns
	}
	return network.NewProxyAutoTransport(n, n)
}
