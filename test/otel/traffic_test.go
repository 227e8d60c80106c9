package otel

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// call is one request through queue-proxy's main port and what it must
// leave in the metrics.
type call struct {
	method, path, body string
	host               string            // Host header; "" = 127.0.0.1:<main port>
	header             map[string]string // added to the request
	want               int               // status code
	tag                string            // kn.route.tag on the http.server.* metrics
	probe              bool              // netheader.IsProbe: no http.server.* and no invocation metrics (§5.4)
	upstream           bool              // reaches the user container: http.client.* metrics
}

// get is a plain GET that reaches the user container.
func get(path string, want int) call {
	return call{method: http.MethodGet, path: path, want: want, tag: "kn:disabled", upstream: true}
}

// batch1 is the main traffic: status codes, a POST with a body, a larger
// response, a Host without a port and a route tag, and probes of each kind.
func batch1() []call {
	return []call{
		get("/status?code=200", 200),
		get("/status?code=200", 200),
		get("/status?code=404", 404),
		get("/status?code=503", 503),
		{method: http.MethodPost, path: "/upload", body: strings.Repeat("x", 1000), want: 200, tag: "kn:disabled", upstream: true},
		get("/download?bytes=3000", 200),
		// A Host without a port has no server.port; the tag header sets
		// kn.route.tag (§3.7).
		{method: http.MethodGet, path: "/", host: "hello.otel-ns.example.com", header: map[string]string{"Knative-Serving-Tag": "blue"}, want: 200, tag: "blue", upstream: true},
		// Kubelet's readiness probe: the drainer answers it (§3.9).
		{method: http.MethodGet, path: "/", header: map[string]string{"User-Agent": "kube-probe/1.30", "K-Network-Probe": "queue"}, want: 200, probe: true},
		// A K-Network-Probe value other than "probe" from another client
		// is proxied (§3.2, §3.9) yet filtered as a probe (§5.4): client
		// metrics only.
		{method: http.MethodGet, path: "/status?code=202", header: map[string]string{"K-Network-Probe": "queue"}, want: 202, probe: true, upstream: true},
		// K-Kubelet-Probe from another client is forwarded to the app
		// (§3.3) and filtered as a probe.
		{method: http.MethodGet, path: "/status?code=203", header: map[string]string{"K-Kubelet-Probe": "queue"}, want: 203, probe: true, upstream: true},
		// Last, a plain request.
		get("/status?code=201", 201),
	}
}

// batch2 is more of the same, sent after a first export was checked.
func batch2() []call {
	return []call{
		get("/status?code=200", 200),
		get("/status?code=404", 404),
		{method: http.MethodPost, path: "/upload", body: strings.Repeat("y", 20), want: 200, tag: "kn:disabled", upstream: true},
		get("/status?code=201", 201),
	}
}

// series is what the tests expect of one data point of a histogram.
type series struct {
	count     uint64
	sizes     []float64 // values of a body-size histogram, one per request
	respSizes []float64 // http.server.response.body.size values
}

// tally is the expected content of the request metrics after some calls.
type tally struct {
	server     map[string]*series // http.server.*, by attributes
	client     map[string]*series // http.client.*, by attributes
	invocation map[string]*series // kn.serving.invocation.duration, by attributes
	lastDepth  int64              // expected last kn.serving.queue.depth
}

func newTally() *tally {
	return &tally{server: map[string]*series{}, client: map[string]*series{}, invocation: map[string]*series{}}
}

func (tl *tally) add(m map[string]*series, key string) *series {
	s := m[key]
	if s == nil {
		s = &series{}
		m[key] = s
	}
	s.count++
	return s
}

// send makes each call through s and records what it must leave in tl.
func (s *stack) send(tl *tally, calls []call) {
	s.t.Helper()
	for _, c := range calls {
		req := s.request(c.method, c.path, strings.NewReader(c.body))
		if c.body == "" {
			req.Body = http.NoBody
			req.ContentLength = 0
		}
		if c.host != "" {
			req.Host = c.host
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		code, body := s.mustDo(req)
		if code != c.want {
			s.t.Fatalf("%s %s (host %q, headers %v): status %d %q, want %d", c.method, c.path, c.host, c.header, code, body, c.want)
		}
		host := c.host
		if host == "" {
			host = s.hostPort()
		}
		if !c.probe {
			sv := map[string]any{
				"http.request.method":       c.method,
				"http.response.status_code": c.want,
				"kn.route.tag":              c.tag,
				"network.protocol.name":     "http",
				"network.protocol.version":  "1.1",
				"url.scheme":                "http",
			}
			addr, port, hasPort := strings.Cut(host, ":")
			sv["server.address"] = addr
			if hasPort {
				p, _ := strconv.Atoi(port)
				sv["server.port"] = p
			}
			ss := tl.add(tl.server, attrs(sv))
			ss.sizes = append(ss.sizes, float64(len(c.body)))
			ss.respSizes = append(ss.respSizes, float64(len(body)))
			tl.add(tl.invocation, attrs(map[string]any{"http.response.status_code": c.want}))
		}
		if c.upstream {
			cs := tl.add(tl.client, attrs(map[string]any{
				"http.request.method":       c.method,
				"http.response.status_code": c.want,
				"network.protocol.name":     "http",
				"network.protocol.version":  "1.1",
				"server.address":            "127.0.0.1",
				"server.port":               s.ports.User,
				"url.scheme":                "http",
			}))
			cs.sizes = append(cs.sizes, float64(len(c.body)))
		}
	}
	// Queue depth is the breaker's in-flight count when the metrics are
	// collected (our documented difference from Knative, which sets it at
	// each request's entry): 0 once the sequential traffic is done.
	tl.lastDepth = 0
}

// countsMatch reports whether the export's request-metric counts are those
// of tl: the cheap check to wait for before the full one.
func (tl *tally) countsMatch(v view) (bool, string) {
	for _, c := range []struct {
		scope, name string
		want        map[string]*series
	}{
		{scopeQueue, "kn.serving.invocation.duration", tl.invocation},
		{scopeHTTP, "http.server.request.duration", tl.server},
		{scopeHTTP, "http.client.request.duration", tl.client},
	} {
		m, ok := v.metric(c.scope, c.name)
		if !ok {
			return false, fmt.Sprintf("no %s in scope %s (scopes: %v)", c.name, c.scope, sortedKeys(v.scopes))
		}
		if m.Type() != pmetric.MetricTypeHistogram {
			return false, fmt.Sprintf("%s is a %s", c.name, m.Type())
		}
		got := map[string]uint64{}
		for k, dp := range histPoints(m) {
			got[k] = dp.Count()
		}
		want := map[string]uint64{}
		for k, s := range c.want {
			want[k] = s.count
		}
		if !mapsEqual(got, want) {
			return false, fmt.Sprintf("%s counts:\n got %v\nwant %v", c.name, got, want)
		}
	}
	return true, ""
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// expectedBuckets are the bucket counts of values under bounds.
func expectedBuckets(bounds, values []float64) []uint64 {
	b := make([]uint64, len(bounds)+1)
	for _, v := range values {
		b[bucketOf(bounds, v)]++
	}
	return b
}

func sum(values []float64) float64 {
	var s float64
	for _, v := range values {
		s += v
	}
	return s
}
