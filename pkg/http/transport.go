package http

import (
	"net/http"
	"time"
)

// defaultIdleConns is the idle pool size when the container concurrency is
// unlimited (0).
const defaultIdleConns = 1000

// NewProxyTransport returns the transport from the queue-proxy to the user
// container (CONTRACT.md §3.2). It behaves as Knative's proxy auto transport:
//
//   - the inbound protocol picks the upstream one: a request with
//     ProtoMajor == 2 goes over cleartext HTTP/2 with prior knowledge (h2c),
//     anything else over HTTP/1.1 (never upgraded to HTTP/2);
//   - compression is off: no Accept-Encoding is added, bodies are passed
//     through undecoded;
//   - dials retry only on timeouts, with growing per-attempt timeouts
//     (BackoffDialer); "connection refused" fails at once;
//   - the idle pool holds cc connections (both MaxIdleConns and
//     MaxIdleConnsPerHost), so every request the breaker admits can reuse
//     one; cc <= 0 (unlimited) means 1000.
//
// Both protocols use net/http's own transports (Go 1.24+ speaks h2c natively),
// not knative.dev/pkg/network's, whose dependencies (apimachinery's wait and
// klog) cost 1 MiB of binary in every pod. The result has
// CloseIdleConnections, which the shutdown path calls.
func NewProxyTransport(cc int) http.RoundTripper {
	n := cc
	if n <= 0 {
		n = defaultIdleConns
	}
	dial := NewBackoffDialer().DialContext
	h1 := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // never proxies loopback
		DialContext:           dial,
		MaxIdleConns:          n,
		MaxIdleConnsPerHost:   n,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)

	h2c := &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return &autoTransport{h1: h1, h2c: h2c}
}

// autoTransport sends each request with the protocol it arrived with.
type autoTransport struct {
	h1, h2c *http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *autoTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return t.h2c.RoundTrip(r)
	}
	return t.h1.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of both protocols.
func (t *autoTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}
