package observability

import (
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	netheader "knative.dev/networking/pkg/http/header"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// RequestHandler is the server metrics layer, placed outside the timeout
// handler: for every request that is not a probe (netheader.IsProbe) it
// records the generation's PointServer instruments (1.15
// revision_request_*; newest http.server.request.duration and the body
// sizes) with the response code the client got (504 when the timeout
// handler answered) and the request's attributes. Probes pass through
// unmeasured. It writes nothing itself. Without PointServer instruments it
// returns next.
func (m *Metrics) RequestHandler(next http.Handler) http.Handler {
	ps := m.points[PointServer]
	if ps == nil {
		return next
	}
	return &metricsHandler{m: m, ps: ps, routeTag: m.routeTag, next: next,
		countBody: ps.measuresQuantity(RequestBodySize)}
}

// AppHandler is the app metrics layer, placed inside the breaker right above
// the reverse proxy: for every request that is not a probe it records the
// PointApp instruments (1.15 revision_app_request_*; newest
// kn.serving.invocation.duration) with the response code of the user
// container (or of the proxy's error handler). Probes pass through
// unmeasured. It writes nothing itself.
func (m *Metrics) AppHandler(next http.Handler) http.Handler {
	ps := m.points[PointApp]
	if ps == nil {
		return next
	}
	return &metricsHandler{m: m, ps: ps, next: next}
}

type metricsHandler struct {
	m         *Metrics
	ps        *pointSet
	routeTag  func(*http.Request) string // nil: no route tag
	countBody bool
	next      http.Handler
}

// recorders are pooled: a request's recorder goes back once the handler
// below has returned, after which nothing holds it.
var recorders = sync.Pool{New: func() any { return pkghttp.NewResponseRecorder(nil, http.StatusOK) }}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isProbe(r.Header) {
		h.next.ServeHTTP(w, r)
		return
	}
	key := h.requestKey(r) // before next: inner layers may change headers
	var body *countingBody
	if h.countBody && r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
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
			key.code = http.StatusInternalServerError
			h.observe(key, start, body, rr.ResponseSize)
		}
	}()
	h.next.ServeHTTP(rr, r)
	returned = true

	key.code = rr.ResponseCode
	size := rr.ResponseSize
	rr.Reset(nil, 0)
	recorders.Put(rr)
	h.observe(key, start, body, size)
}

// requestKey fills the attributes of r that the point uses.
func (h *metricsHandler) requestKey(r *http.Request) seriesKey {
	var k seriesKey
	ps := h.ps
	if h.routeTag != nil && ps.uses(AttrRouteTag) {
		k.route = h.routeTag(r)
	}
	if ps.uses(AttrMethod) {
		k.method = standardMethod(r.Method)
		k.https = r.TLS != nil
		k.host, k.port = splitHostPort(r.Host)
		k.port = nonDefaultPort(k.https, k.port)
		k.proto = protoVersion(r.ProtoMajor, r.ProtoMinor)
	}
	return k
}

func (h *metricsHandler) observe(k seriesKey, start time.Duration, body *countingBody, respSize int64) {
	o := observation{seconds: float64(h.m.since()-start) / float64(time.Second), respSize: respSize}
	if body != nil {
		o.reqSize = body.n.Load()
	}
	h.ps.get(k).add(h.m, o)
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

// Transport is the client metrics layer around the upstream transport: it
// records the generation's PointClient instruments (newest
// http.client.request.duration and .body.size) for every round trip, probes
// included, timed until the response headers arrived. Without PointClient
// instruments it returns next.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	ps := m.points[PointClient]
	if ps == nil {
		return next
	}
	return &metricsTransport{m: m, ps: ps, next: next}
}

type metricsTransport struct {
	m    *Metrics
	ps   *pointSet
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper. A request body of known length
// counts as that length; one of unknown length is counted as the transport
// reads it (on a shallow copy of the request, which RoundTrip must not
// modify).
func (t *metricsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := t.m.since()
	size := r.ContentLength
	var body *countingBody
	if size < 0 && r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r2 := *r
		r2.Body = body
		r = &r2
	}
	resp, err := t.next.RoundTrip(r)
	x := ClientExchange{Method: r.Method, Start: start, Err: err}
	switch {
	case body != nil:
		x.RequestBytes = body.n.Load()
	case size > 0:
		x.RequestBytes = size
	}
	if r.URL != nil {
		x.HTTPS = r.URL.Scheme == "https"
		x.Host = r.URL.Host
	}
	if err == nil {
		x.StatusCode, x.ProtoMajor, x.ProtoMinor = resp.StatusCode, resp.ProtoMajor, resp.ProtoMinor
	} else {
		x.ProtoMajor, x.ProtoMinor = r.ProtoMajor, r.ProtoMinor
	}
	t.m.recordClient(t.ps, &x)
	return resp, err
}

// ClientExchange is one round trip to the user container, as the client
// metrics record it.
type ClientExchange struct {
	Method string
	HTTPS  bool
	Host   string // host[:port] of the URL
	// Start is the exchange's start, from ClientRecorder.Now.
	Start time.Duration
	// StatusCode and the response's protocol version; with Err, the
	// request's version.
	StatusCode, ProtoMajor, ProtoMinor int
	RequestBytes                       int64 // the request body's length as sent
	Err                                error
}

// ClientRecorder records the client metrics (PointClient) of exchanges
// made without a RoundTripper: the lean upstream path's.
type ClientRecorder struct {
	m  *Metrics
	ps *pointSet
}

// ClientRecorder returns the recorder of the generation's PointClient
// instruments, or nil when it has none (Knative 1.15).
func (m *Metrics) ClientRecorder() *ClientRecorder {
	ps := m.points[PointClient]
	if ps == nil {
		return nil
	}
	return &ClientRecorder{m: m, ps: ps}
}

// Now is the current time on the recorder's clock, for ClientExchange.Start.
func (c *ClientRecorder) Now() time.Duration { return c.m.since() }

// Record records x, timed until now; x is not retained.
func (c *ClientRecorder) Record(x *ClientExchange) { c.m.recordClient(c.ps, x) }

// recordClient records x, timed until now, in ps.
func (m *Metrics) recordClient(ps *pointSet, x *ClientExchange) {
	o := observation{seconds: float64(m.since()-x.Start) / float64(time.Second)}
	if x.RequestBytes > 0 {
		o.reqSize = x.RequestBytes
	}
	var k seriesKey
	k.method = standardMethod(x.Method)
	k.https = x.HTTPS
	k.host, k.port = splitHostPort(x.Host)
	k.port = nonDefaultPort(k.https, k.port)
	k.proto = protoVersion(x.ProtoMajor, x.ProtoMinor)
	if x.Err == nil {
		k.code = x.StatusCode
	} else {
		k.errType = errorType(x.Err)
	}
	ps.get(k).add(m, o)
}

// countingBody counts the bytes read from a request body. The count is
// atomic: net/http's transport may read the body on its own goroutine.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// standardMethod is the http.request.method value: the method if it is one
// of the nine standard ones (in any case), otherwise "_OTHER".
func standardMethod(m string) string {
	for _, s := range standardMethods {
		if m == s || strings.EqualFold(m, s) {
			return s
		}
	}
	return "_OTHER"
}

var standardMethods = [...]string{
	http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete,
	http.MethodOptions, http.MethodPatch, http.MethodConnect, http.MethodTrace,
}

// splitHostPort splits "host[:port]" (or "[v6]:port"); the port is -1
// when absent or invalid.
func splitHostPort(hp string) (string, int) {
	if strings.HasPrefix(hp, "[") {
		end := strings.LastIndexByte(hp, ']')
		if end < 0 {
			return "", -1
		}
		if strings.IndexByte(hp[end:], ':') < 0 {
			return hp[1:end], -1
		}
	} else if !strings.Contains(hp, ":") {
		return hp, -1
	}
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", -1
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, -1
	}
	return host, int(n)
}

// nonDefaultPort is port unless it is absent or the scheme's default (80,
// 443), which the semantic conventions leave out: then -1.
func nonDefaultPort(https bool, port int) int {
	if port <= 0 || (https && port == 443) || (!https && port == 80) {
		return -1
	}
	return port
}

// protoVersion is network.protocol.version: "1.1", "1.0", "2".
func protoVersion(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1"
	case major == 1 && minor == 0:
		return "1.0"
	case major == 2 && minor == 0:
		return "2"
	case major == 0:
		return ""
	}
	return strconv.Itoa(major) + "." + strconv.Itoa(minor)
}

// errorType is the error.type of a transport error: the error's Go type as
// "package/path.Name" (pointers dereferenced), as otelhttp reports it.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t == nil {
		return "_OTHER"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		if s := t.String(); s != "" {
			return s
		}
		return "_OTHER"
	}
	return t.PkgPath() + "." + t.Name()
}
