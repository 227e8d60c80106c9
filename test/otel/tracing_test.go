package otel

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Span flags as the OTel SDK's OTLP exporter sets them: the W3C trace
// flags (sampled), "whether the parent is remote is known", and "it is".
const (
	flagSampled     = 0x01
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// bspFast makes the batch span processor send what it has every 100 ms.
const bspFast = "100"

// tracingConfig is OBSERVABILITY_CONFIG with tracing over protocol to
// endpoint, every request sampled (samplingRate 1), and, unless
// metricsEndpoint is empty, request metrics over the same protocol to it
// every second.
func tracingConfig(protocol, endpoint, metricsEndpoint string) string {
	rm := map[string]any{"protocol": "none"}
	if metricsEndpoint != "" {
		rm = map[string]any{"protocol": protocol, "endpoint": metricsEndpoint, "exportInterval": int64(time.Second)}
	}
	b, err := json.Marshal(map[string]any{
		"tracing":        map[string]any{"protocol": protocol, "endpoint": endpoint, "samplingRate": 1},
		"metrics":        map[string]any{"protocol": "none"},
		"runtime":        map[string]any{"profiling": "disabled", "exportInterval": int64(15 * time.Second)},
		"requestMetrics": rm,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// newestTree is what the newest generation must trace for sc (CONTRACT.md
// §5.5; attributes and statuses as otelhttp v0.72.0 sets them): the
// otelhttp server span, kn.queueproxy.proxy, kn.queueproxy.wait when the
// breaker exists (cc > 0), and the otelhttp client span under the wait
// span (under the proxy span at cc 0) unless the breaker rejected the
// request.
func newestTree(sc sentCall, userPort, cc int, rejected bool) spanTree {
	host, portStr, hasPort := strings.Cut(sc.sentHost, ":")
	server := map[string]any{
		"server.address":            host,
		"http.request.method":       sc.method,
		"url.scheme":                "http",
		"network.peer.address":      "127.0.0.1",
		"network.peer.port":         sc.localPort,
		"client.address":            cmp.Or(sc.clientAddr, "127.0.0.1"),
		"url.path":                  sc.urlPath(),
		"network.protocol.version":  "1.1",
		"kn.route.tag":              sc.tag,
		"http.response.status_code": sc.want,
	}
	if port, _ := strconv.Atoi(portStr); hasPort && port != 80 {
		server["server.port"] = port
	}
	if sc.userAgent != "" {
		server["user_agent.original"] = sc.userAgent
	}
	if !rejected && len(sc.body) > 0 {
		server["http.request.body.size"] = len(sc.body)
	}
	if len(sc.respBody) > 0 {
		server["http.response.body.size"] = len(sc.respBody)
	}
	serverStatus := ptrace.StatusCodeUnset
	if sc.want >= 500 {
		serverStatus = ptrace.StatusCodeError
	}
	const local = flagSampled | flagHasIsRemote // rate 1 samples every span
	serverFlags := uint32(local)
	if !sc.parentSpan.IsEmpty() {
		serverFlags |= flagIsRemote
	}
	tree := spanTree{
		traceID:      sc.traceID,
		remoteParent: sc.parentSpan,
		slack:        clockSlack,
		spans: []spanWant{
			{role: "server", name: sc.method, kind: ptrace.SpanKindServer, scope: scopeHTTP, scopeVersion: contribVersion,
				attrs: server, status: serverStatus, flags: serverFlags},
			{role: "proxy", name: "kn.queueproxy.proxy", kind: ptrace.SpanKindInternal, parent: "server", scope: scopeQueue,
				status: ptrace.StatusCodeUnset, flags: local},
		},
	}
	upstreamParent := "proxy"
	if cc > 0 {
		tree.spans = append(tree.spans, spanWant{role: "wait", name: "kn.queueproxy.wait", kind: ptrace.SpanKindInternal,
			parent: "proxy", scope: scopeQueue, status: ptrace.StatusCodeUnset, flags: local})
		upstreamParent = "wait"
	}
	if rejected {
		return tree
	}
	client := map[string]any{
		"http.request.method":       sc.method,
		"url.full":                  "http://127.0.0.1:" + strconv.Itoa(userPort) + sc.path,
		"server.address":            "127.0.0.1",
		"server.port":               userPort,
		"network.protocol.version":  "1.1",
		"http.response.status_code": sc.want,
	}
	clientStatus := ptrace.StatusCodeUnset
	if sc.want >= 400 {
		client["error.type"] = strconv.Itoa(sc.want)
		clientStatus = ptrace.StatusCodeError
	}
	tree.spans = append(tree.spans, spanWant{role: "client", name: "HTTP " + sc.method, kind: ptrace.SpanKindClient,
		parent: upstreamParent, scope: scopeHTTP, scopeVersion: contribVersion, attrs: client, status: clientStatus, flags: local,
		mayOutliveParent: cc > 0})
	if cc > 0 {
		// The wait span ends when the breaker admits the request.
		tree.endsBefore = [][2]string{{"wait", "client"}}
	}
	return tree
}

// newestRoot picks the root server span of sc's trace when sc brought no
// trace context: its url.path is sc's (unique among such calls).
func newestRoot(sc sentCall) func(recSpan) bool {
	return func(s recSpan) bool {
		v, ok := s.Attributes().Get("url.path")
		return s.Kind() == ptrace.SpanKindServer && ok && v.Str() == sc.urlPath()
	}
}

// newestCalls are the requests of the main scenario: statuses, bodies,
// hosts, route tags, forwarded clients, with and without a trace context.
func newestCalls() []spanCall {
	get := func(name, path string, want int) spanCall {
		return spanCall{name: name, method: http.MethodGet, path: path, propagation: propW3C, want: want, tag: "kn:disabled"}
	}
	withHost := func(c spanCall, host string) spanCall { c.host = host; return c }
	withHeader := func(c spanCall, tag string, kv ...string) spanCall {
		c.header = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			c.header[kv[i]] = kv[i+1]
		}
		c.tag = tag
		return c
	}
	root := get("no trace context: a new trace, with a user agent", "/hello/new-trace", 200)
	root.propagation, root.userAgent = propNone, "otel-trace-test/1.0"
	post := get("POST with a body", "/upload", 200)
	post.method, post.body = http.MethodPost, strings.Repeat("x", 1000)
	xff := withHeader(get("X-Forwarded-For", "/", 200), "kn:disabled", "X-Forwarded-For", "203.0.113.7, 10.1.2.3")
	xff.clientAddr = "203.0.113.7"
	unsampled := get("unsampled parent: rate 1 samples anyway", "/status?code=200", 200)
	unsampled.propagation = propW3CNotSamp
	return []spanCall{
		root,
		post,
		get("404 from the app", "/status?code=404", 404),
		get("503 from the app", "/status?code=503", 503),
		get("query string", "/status?code=201&x=y", 201),
		get("empty response body", "/download?bytes=0", 200),
		withHost(get("Host without a port", "/", 200), "hello.otel-ns.example.com"),
		withHost(get("Host with port 80", "/", 200), "hello.otel-ns.example.com:80"),
		withHeader(get("route tag", "/", 200), "blue", "Knative-Serving-Tag", "blue"),
		withHeader(get("default route", "/", 200), "kn:default", "Knative-Serving-Default-Route", "true"),
		withHeader(get("tag on the default route", "/", 200), "kn:undefined", "Knative-Serving-Tag", "blue", "Knative-Serving-Default-Route", "true"),
		xff,
		unsampled,
	}
}

// TestNewestSpans checks the spans of the newest generation as the
// Collector's OTLP receiver decodes them, over each protocol, in three
// pods: CONTAINER_CONCURRENCY 2 (the main traffic, probes, the resource),
// 0 (no wait span; the endpoint from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// and 1 with a full breaker (rejected requests have no client span).
func TestNewestSpans(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, proto string)
	}{
		{"cc2", testNewestTraffic},
		{"cc0 env endpoint", testNewestNoBreakerEnvEndpoint},
		{"cc1 breaker full", testNewestBreakerFull},
	}
	for _, proto := range protocols {
		for _, sn := range scenarios {
			t.Run(proto+"/"+sn.name, func(t *testing.T) {
				t.Parallel()
				sn.run(t, proto)
			})
		}
	}
}

// testNewestTraffic: probes first (no span, CONTRACT.md §5.4), then the
// calls; every call's trace is checked in full, nothing else arrives, and
// the resource is the metrics export's.
func testNewestTraffic(t *testing.T, proto string) {
	col := startTraceCollector(t)
	mcol := startCollector(t, nil)
	s := startStack(t, tracingConfig(proto, col.endpoint(proto), mcol.endpoint(proto)),
		map[string]string{"OTEL_BSP_SCHEDULE_DELAY": bspFast})
	for _, ua := range []string{"Knative-Activator-Probe", "kube-probe/1.30"} {
		if code, body := s.probe(t, ua); code != http.StatusOK || body != "queue" {
			t.Fatalf("probe with User-Agent %s: %d %q, want 200 queue", ua, code, body)
		}
	}
	var sent []sentCall
	for _, c := range newestCalls() {
		sent = append(sent, s.mustSend(t, c))
	}
	const perCall = 4
	spans := waitAll(t, col.rec, sent, perCall, newestRoot)
	for _, sc := range sent {
		t.Run(sc.name, func(t *testing.T) {
			tr, _ := traceOf(spans, sc, newestRoot(sc))
			checkTree(t, tr, newestTree(sc, s.ports.User, containerConc, false))
			if t.Failed() {
				t.Logf("the trace:\n%s", dumpSpans(tr))
			}
		})
	}
	checkNewestExports(t, col.rec, mcol)
	checkStartupTrace(t, col.rec, ptrace.SpanKindInternal)
}

// waitAll waits until each call's trace has perCall spans, then checks
// that no other span arrived: the probes sent first, the harness's
// readiness probes and anything else would have been exported before (the
// batch span processor exports in the order spans end).
func waitAll(t *testing.T, rec *spanRecorder, sent []sentCall, perCall int, root func(sentCall) func(recSpan) bool) []recSpan {
	t.Helper()
	spans := waitSpans(t, rec, "every call's spans", func(spans []recSpan) (bool, string) {
		for _, sc := range sent {
			tr, why := traceOf(spans, sc, root(sc))
			if why != "" {
				return false, why
			}
			if len(tr) < perCall {
				return false, fmt.Sprintf("%s: %d spans", sc.name, len(tr))
			}
		}
		return true, ""
	})
	if want := perCall * len(sent); len(spans) != want {
		t.Errorf("%d spans received, want %d (%d per call): probes or others left spans", len(spans), want, perCall)
		var extra []recSpan
		mine := map[string]bool{}
		for _, sc := range sent {
			tr, _ := traceOf(spans, sc, root(sc))
			for _, s := range tr {
				mine[s.SpanID().String()] = true
			}
		}
		for _, s := range spans {
			if !mine[s.SpanID().String()] {
				extra = append(extra, s)
			}
		}
		t.Errorf("spans outside the calls' traces:\n%s", dumpSpans(extra))
	}
	return spans
}

// checkNewestExports checks the shape and resource of every trace export:
// one ResourceSpans, each scope once, the resource of CONTRACT.md §5.2
// (checkResource, as for metrics) and the very resource and schema URL of
// the metrics export that mcol received from the same process.
func checkNewestExports(t *testing.T, rec *spanRecorder, mcol *collector) {
	t.Helper()
	exports := rec.all()
	for i, e := range exports {
		rss := e.td.ResourceSpans()
		if rss.Len() != 1 {
			t.Errorf("trace export %d has %d ResourceSpans, want 1", i, rss.Len())
			continue
		}
		seen := map[string]bool{}
		for j := 0; j < rss.At(0).ScopeSpans().Len(); j++ {
			name := rss.At(0).ScopeSpans().At(j).Scope().Name()
			if seen[name] {
				t.Errorf("trace export %d: scope %q appears twice", i, name)
			}
			seen[name] = true
		}
	}
	if len(exports) == 0 || exports[0].td.ResourceSpans().Len() == 0 {
		t.Fatal("no trace export")
	}
	first := exports[0].td.ResourceSpans().At(0)
	t.Run("resource", func(t *testing.T) {
		checkResource(t, first.Resource().Attributes())
	})
	for i, e := range exports[1:] {
		if rss := e.td.ResourceSpans(); rss.Len() > 0 && attrKey(rss.At(0).Resource().Attributes()) != attrKey(first.Resource().Attributes()) {
			t.Errorf("trace export %d has another resource: {%s}, first {%s}", i+1,
				attrKey(rss.At(0).Resource().Attributes()), attrKey(first.Resource().Attributes()))
		}
	}
	m := waitExport(t, mcol, "a metrics export", func(view) (bool, string) { return true, "" })
	rm := m.md.ResourceMetrics().At(0)
	if first.SchemaUrl() == "" || first.SchemaUrl() != rm.SchemaUrl() {
		t.Errorf("trace resource schema URL %q, metrics export's %q; want the same, not empty", first.SchemaUrl(), rm.SchemaUrl())
	}
	if got, want := attrKey(first.Resource().Attributes()), attrKey(rm.Resource().Attributes()); got != want {
		t.Errorf("trace resource differs from the metrics export's:\n traces {%s}\nmetrics {%s}", got, want)
	}
}

// testNewestNoBreakerEnvEndpoint: CONTAINER_CONCURRENCY 0, so no wait span
// and the client span is the proxy span's child; tracing.endpoint points
// where nothing listens and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which
// overrides it (CONTRACT.md §1, §5.6), at the collector.
func testNewestNoBreakerEnvEndpoint(t *testing.T, proto string) {
	col := startTraceCollector(t)
	nowhere := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	if proto == protoHTTP {
		nowhere += "/v1/traces"
	}
	s := startStack(t, tracingConfig(proto, nowhere, ""), map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY":            bspFast,
		"CONTAINER_CONCURRENCY":              "0",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": col.endpoint(proto),
	})
	calls := []spanCall{
		{name: "no trace context", method: http.MethodGet, path: "/hello/cc0", userAgent: "otel-trace-test/1.0", want: 200, tag: "kn:disabled"},
		{name: "POST with a body", method: http.MethodPost, path: "/upload", body: "twenty bytes of body", propagation: propW3C, want: 200, tag: "kn:disabled"},
		{name: "503 from the app", method: http.MethodGet, path: "/status?code=503", propagation: propW3C, want: 503, tag: "kn:disabled"},
	}
	var sent []sentCall
	for _, c := range calls {
		sent = append(sent, s.mustSend(t, c))
	}
	spans := waitAll(t, col.rec, sent, 3, newestRoot)
	for _, sc := range sent {
		t.Run(sc.name, func(t *testing.T) {
			tr, _ := traceOf(spans, sc, newestRoot(sc))
			checkTree(t, tr, newestTree(sc, s.ports.User, 0, false))
			if t.Failed() {
				t.Logf("the trace:\n%s", dumpSpans(tr))
			}
		})
	}
}

// testNewestBreakerFull: CONTAINER_CONCURRENCY 1 (queue depth 10). One
// request holds the slot in a slow handler; once its wait span arrived
// (it was admitted), more requests than the queue holds come at once.
// Those the breaker rejects get 503 "pending request queue full" and
// leave the server span (Error, 503), the proxy span and the wait span,
// and no client span; the others leave the full tree.
func testNewestBreakerFull(t *testing.T, proto string) {
	const (
		queueDepth = 10 // 10 × CONTAINER_CONCURRENCY (CONTRACT.md §3.4)
		extra      = 4  // rejected if every filler arrives while the slot is held
		holdMS     = 3000
	)
	col := startTraceCollector(t)
	s := startStack(t, tracingConfig(proto, col.endpoint(proto), ""), map[string]string{
		"OTEL_BSP_SCHEDULE_DELAY": bspFast,
		"CONTAINER_CONCURRENCY":   "1",
	})
	holder := s.prepare(spanCall{name: "holder", method: http.MethodGet, path: "/sleep?ms=" + strconv.Itoa(holdMS),
		propagation: propW3C, want: 200, tag: "kn:disabled"})
	holderDone := make(chan sentCall, 1)
	go func() { holderDone <- s.exchange(holder) }()
	waitSpans(t, col.rec, "the holder's admission (its wait span)", func(spans []recSpan) (bool, string) {
		for _, sp := range spans {
			if sp.TraceID() == holder.traceID && sp.Name() == "kn.queueproxy.wait" {
				return true, ""
			}
		}
		return false, "no wait span of the holder yet"
	})

	fillers := make([]sentCall, queueDepth+extra)
	var wg sync.WaitGroup
	for i := range fillers {
		fillers[i] = s.prepare(spanCall{name: "filler " + strconv.Itoa(i), method: http.MethodGet,
			path: "/status?code=200", propagation: propW3C, want: 200, tag: "kn:disabled"})
		wg.Go(func() { fillers[i] = s.exchange(fillers[i]) })
	}
	wg.Wait()
	h := <-holderDone
	if h.err != nil || h.status != 200 {
		t.Fatalf("the holder: %d %q %v", h.status, h.respBody, h.err)
	}
	var admitted, rejected []sentCall
	for _, f := range fillers {
		switch {
		case f.err != nil:
			t.Fatalf("%s: %v", f.name, f.err)
		case f.status == 200:
			admitted = append(admitted, f)
		case f.status == 503 && f.respBody == "pending request queue full\n":
			f.want = 503
			rejected = append(rejected, f)
		default:
			t.Fatalf("%s: %d %q, want 200, or 503 pending request queue full", f.name, f.status, f.respBody)
		}
	}
	t.Logf("%d admitted, %d rejected by the full breaker", len(admitted), len(rejected))
	if len(rejected) == 0 || len(admitted) > queueDepth {
		t.Fatalf("%d requests rejected, %d queued; want some rejected and at most %d queued", len(rejected), len(admitted), queueDepth)
	}

	all := append([]sentCall{h}, admitted...)
	all = append(all, rejected...)
	spans := waitSpans(t, col.rec, "every call's spans", func(spans []recSpan) (bool, string) {
		for _, sc := range all {
			want := 4
			if sc.status == 503 {
				want = 3
			}
			if n := len(byTrace(spans)[sc.traceID]); n < want {
				return false, fmt.Sprintf("%s: %d spans", sc.name, n)
			}
		}
		return true, ""
	})
	if want := 4*(1+len(admitted)) + 3*len(rejected); len(spans) != want {
		t.Errorf("%d spans received, want %d", len(spans), want)
	}
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			tr := byTrace(spans)[sc.traceID]
			checkTree(t, tr, newestTree(sc, s.ports.User, 1, sc.status == 503))
			if t.Failed() {
				t.Logf("the trace:\n%s", dumpSpans(tr))
			}
		})
	}
}
