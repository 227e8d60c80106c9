package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"golang.org/x/net/http2"
)

// User-Agents of the probers (CONTRACT.md §3.9, §4.5).
const (
	activatorUA   = "Knative-Activator-Probe"
	autoscalingUA = "Knative-Autoscaling-Probe"
	kubeletUA     = "kube-probe/1.31"
)

// requestTimeout bounds every request the suite makes.
const requestTimeout = 60 * time.Second

// newH1Client returns an HTTP/1.1 keep-alive client that adds nothing the
// test did not ask for (no Accept-Encoding, no proxy).
func newH1Client(t *testing.T) *http.Client {
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 128,
		ForceAttemptHTTP2:   false,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: requestTimeout}
}

// newH2CClient speaks cleartext HTTP/2 with prior knowledge, as the
// activator and ingresses do.
func newH2CClient(t *testing.T) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: requestTimeout}
}

// response is a fully read response.
type response struct {
	code   int
	body   string
	header http.Header
	proto  string
}

// fetch sends req and reads the whole response; safe from any goroutine.
func fetch(c *http.Client, req *http.Request) (response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, body: string(b), header: resp.Header, proto: resp.Proto}
	if err != nil {
		return r, fmt.Errorf("reading the body of %s %s: %w", req.Method, req.URL, err)
	}
	return r, nil
}

// mustFetch is fetch that fails the test on a transport error. Only for the
// test's own goroutine.
func mustFetch(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	r, err := fetch(c, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return r
}

// newRequest builds a request; the URL is always valid here.
func newRequest(method, url string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return req
}

// get is a GET with no User-Agent unless the caller sets one.
func get(url string) *http.Request {
	req := newRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "")
	return req
}

// probeRequest is a health probe as kubelet or the activator sends it.
func probeRequest(url, ua, kNetworkProbe string) *http.Request {
	req := get(url)
	req.Header.Set("User-Agent", ua)
	if kNetworkProbe != "" {
		req.Header.Set("K-Network-Probe", kNetworkProbe)
	}
	return req
}

// eventually calls cond every interval until it reports true or timeout
// passes, then fails the test with cond's last explanation.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := harness.Poll(timeout, interval, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// isShuttingDown reports whether r is the drainer's answer to a probe.
func isShuttingDown(r response) bool {
	return r.code == http.StatusServiceUnavailable && r.body == "shutting down\n"
}

// dialRefused reports whether nothing listens on port any more.
func dialRefused(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return strings.Contains(err.Error(), "refused")
	}
	c.Close()
	return false
}
