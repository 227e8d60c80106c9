package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxDrain bounds how much of a probe response body is read before the
// connection is closed. Keep-alives are off, so draining buys no connection
// reuse; the bound only keeps an endless body from holding the probe until
// its timeout. Kubelet itself reads at most 10 KiB.
const maxDrain = 64 << 10

// Probe clients. Every probe opens its own connection and closes it after
// the response (keep-alives off, as kubelet and Knative do), so the
// transports keep no idle connections and can be shared by all probes.
var (
	// http1Client speaks HTTP/1.1 only (also over TLS: no ALPN upgrade).
	// Compression stays on, so Accept-Encoding: gzip is sent, as Knative's
	// prober does.
	http1Client = &http.Client{Transport: probeTransport(false)}
	// h2Client speaks HTTP/2 only: cleartext with prior knowledge (h2c) for
	// http URLs, h2 by ALPN for https ones.
	h2Client = &http.Client{Transport: probeTransport(true)}
)

func probeTransport(h2 bool) *http.Transport {
	t := &http.Transport{
		Proxy:             nil, // probes go straight to the container
		DisableKeepAlives: true,
		Protocols:         new(http.Protocols),
	}
	if h2 {
		t.Protocols.SetUnencryptedHTTP2(true)
		t.Protocols.SetHTTP2(true)
	} else {
		t.Protocols.SetHTTP1(true)
	}
	return t
}

// HTTPProbeOptions describe an HTTP readiness probe (a corev1 HTTPGetAction
// with the port resolved).
type HTTPProbeOptions struct {
	// Scheme is "HTTP" or "HTTPS", in any case. Empty is an error, as it is
	// in Knative ("missing protocol scheme").
	Scheme string
	// Host and Port are where the request goes; Host must not be empty.
	Host string
	Port int
	// Path is the request path, with or without its leading slash; it may
	// carry a query.
	Path string
	// Header holds the probe's httpHeaders, added after the User-Agent.
	Header http.Header
	// AutoDetectHTTP2 enables ENABLE_HTTP2_AUTO_DETECTION (CONTRACT.md §4.4).
	AutoDetectHTTP2 bool
}

// HTTPProbe is an HTTP readiness probe, built once and run many times.
type HTTPProbe struct {
	// withHeaders carries the probe's headers; bare only the User-Agent
	// (HTTP/2 detection requests go without custom headers). Both are
	// templates: each attempt sends a shallow copy bound to its context.
	// Nothing writes to their header maps after construction.
	withHeaders, bare *http.Request
	autoDetectHTTP2   bool
	customHeaders     bool
}

// NewHTTPProbe validates o and builds the probe's requests.
func NewHTTPProbe(o HTTPProbeOptions) (*HTTPProbe, error) {
	scheme := strings.ToLower(o.Scheme)
	switch scheme {
	case "http", "https":
	case "":
		return nil, errors.New("missing protocol scheme")
	default:
		return nil, errors.New("unsupported protocol scheme " + strconv.Quote(o.Scheme))
	}
	if o.Host == "" {
		return nil, errors.New("empty host")
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, errors.New("port " + strconv.Itoa(o.Port) + " is out of range 1-65535")
	}
	raw := scheme + "://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) + "/" + strings.TrimPrefix(o.Path, "/")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	newReq := func(custom http.Header) *http.Request {
		h := make(http.Header, len(custom)+1)
		h["User-Agent"] = []string{KubeProbeUserAgent}
		for k, vs := range custom {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		return &http.Request{
			Method: http.MethodGet, URL: u, Host: u.Host, Header: h,
		}
	}
	return &HTTPProbe{
		withHeaders:     newReq(o.Header),
		bare:            newReq(nil),
		autoDetectHTTP2: o.AutoDetectHTTP2,
		customHeaders:   len(o.Header) != 0,
	}, nil
}

// Probe sends one GET (or, with HTTP/2 auto-detection, up to two) within
// ctx. It is ready when the final status, after following redirects, is
// 200-399. Bodies are drained (up to 64 KiB) and closed.
//
// With auto-detection (CONTRACT.md §4.4), every attempt first sends an h2c
// prior-knowledge GET without the custom headers. If that is ready, the
// probe is sent again over HTTP/2 with the headers and decides; without
// custom headers the second request would repeat the first, so it is
// skipped. Otherwise an HTTP/1.1 GET without the custom headers decides.
func (p *HTTPProbe) Probe(ctx context.Context) error {
	if !p.autoDetectHTTP2 {
		return get(ctx, http1Client, p.withHeaders)
	}
	if get(ctx, h2Client, p.bare) == nil {
		if !p.customHeaders {
			return nil
		}
		return get(ctx, h2Client, p.withHeaders)
	}
	return get(ctx, http1Client, p.bare)
}

// ConnectError returns the error Probe returns when it cannot connect to
// the container because of err, the dial error: for a port found closed by
// other means, in the probe's own words (`Get "<url>": <err>`).
func (p *HTTPProbe) ConnectError(err error) error {
	return &url.Error{Op: "Get", URL: p.withHeaders.URL.String(), Err: err}
}

func get(ctx context.Context, c *http.Client, tmpl *http.Request) error {
	resp, err := c.Do(tmpl.WithContext(ctx))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// StatusError is the error of an HTTP probe answered with a status outside
// 200-399.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return "HTTP probe did not respond Ready, got status code: " + strconv.Itoa(e.Code)
}
