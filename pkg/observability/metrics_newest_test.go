package observability

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	clocktest "k8s.io/utils/clock/testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// newestConfig is a newest-generation configuration with a fixed resource.
func newestConfig() MetricsConfig {
	cfg := testIdentity
	cfg.Generation = GenerationNewest
	cfg.RouteTag = func(r *http.Request) string {
		if v := r.Header.Get("Knative-Serving-Tag"); v != "" {
			return v
		}
		return "kn:disabled"
	}
	cfg.Resource = []metricdata.Attr{metricdata.String("k8s.namespace.name", "default"), metricdata.String("service.name", "hello")}
	cfg.ResourceSchemaURL = ResourceSchemaURL
	return cfg
}

// labelsOf returns the label name -> value map of a sample.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestNewestExposition(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(1700000000, 0))
	cfg := newestConfig()
	depth := 3
	cfg.QueueDepth = func() int { return depth }
	m := newTestMetrics(t, clk, cfg)
	h := testChain(m, clk, timedApp(clk))

	serve(h, map[string]string{"X-App-Ms": "7", "X-Queue-Ms": "3"})                  // 200, 10 ms total
	serve(h, map[string]string{"X-App-Ms": "5000", "X-Code": "503"})                 // exactly on a bound: 5 s
	serve(h, map[string]string{"Knative-Serving-Tag": "blue"})                       // route tag
	serve(h, map[string]string{"X-Reject": "503"})                                   // rejected by the "breaker": server only
	serve(h, map[string]string{"K-Network-Probe": "queue"})                          // probe: nothing
	serve(h, map[string]string{"User-Agent": "kube-probe/1.30", "X-App-Ms": "1000"}) // probe: nothing

	body, fams := scrape(t, m)
	wantFamilies := []string{
		"http_server_request_body_size_bytes", "http_server_request_duration_seconds",
		"http_server_response_body_size_bytes", "kn_serving_invocation_duration_seconds",
		"kn_serving_queue_depth", "target_info",
	}
	var got []string
	for name := range fams {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, wantFamilies) {
		t.Fatalf("families = %v, want %v\n%s", got, wantFamilies, body)
	}

	// Types and help texts.
	for name, want := range map[string]struct {
		typ  dto.MetricType
		help string
	}{
		"kn_serving_invocation_duration_seconds": {dto.MetricType_HISTOGRAM, "The duration of task execution"},
		"kn_serving_queue_depth":                 {dto.MetricType_GAUGE, "Number of current requests in the queue"},
		"http_server_request_duration_seconds":   {dto.MetricType_HISTOGRAM, "Duration of HTTP server requests."},
		"http_server_request_body_size_bytes":    {dto.MetricType_HISTOGRAM, "Size of HTTP server request bodies."},
		"http_server_response_body_size_bytes":   {dto.MetricType_HISTOGRAM, "Size of HTTP server response bodies."},
		"target_info":                            {dto.MetricType_GAUGE, "Target metadata"},
	} {
		if f := fams[name]; f.GetType() != want.typ || f.GetHelp() != want.help {
			t.Errorf("%s: type %v help %q, want %v %q", name, f.GetType(), f.GetHelp(), want.typ, want.help)
		}
	}

	// kn_serving_invocation_duration_seconds: two admitted non-probe
	// requests with their codes, scope labels, bounds, upper-inclusive.
	inv := fams["kn_serving_invocation_duration_seconds"].GetMetric()
	codes := map[string]*dto.Histogram{}
	for _, s := range inv {
		l := labelsOf(s)
		if l["otel_scope_name"] != "knative.dev/serving/pkg/queue" || l["otel_scope_version"] != "" || l["otel_scope_schema_url"] != "" {
			t.Errorf("invocation scope labels = %v", l)
		}
		if len(l) != 4 {
			t.Errorf("invocation labels = %v, want http_response_status_code and the three scope labels", l)
		}
		codes[l["http_response_status_code"]] = s.GetHistogram()
	}
	if len(codes) != 2 || codes["200"].GetSampleCount() != 2 || codes["503"].GetSampleCount() != 1 {
		t.Fatalf("invocation series = %v, want 200 x2 and 503 x1", codes)
	}
	var bounds []float64
	for _, b := range codes["503"].GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			bounds = append(bounds, b.GetUpperBound())
		}
		// 5 s is on a bound: counted in le="5" (OpenTelemetry), not in the next bucket.
		if b.GetUpperBound() == 5 && b.GetCumulativeCount() != 1 {
			t.Errorf("le=5 bucket = %d, want 1 (bounds are inclusive)", b.GetCumulativeCount())
		}
	}
	if !slices.Equal(bounds, DurationBucketsSeconds) {
		t.Errorf("bounds = %v, want %v", bounds, DurationBucketsSeconds)
	}
	if s := codes["503"].GetSampleSum(); s != 5 {
		t.Errorf("sum = %v, want 5 (seconds)", s)
	}

	// http_server_request_duration_seconds: four non-probe requests,
	// with the semantic-convention labels.
	var total uint64
	for _, s := range fams["http_server_request_duration_seconds"].GetMetric() {
		l := labelsOf(s)
		total += s.GetHistogram().GetSampleCount()
		want := map[string]string{
			"http_request_method": "GET", "network_protocol_name": "http", "network_protocol_version": "1.1",
			"server_address": "svc.example", "url_scheme": "http",
			"otel_scope_name":       "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
			"otel_scope_version":    "0.72.0",
			"otel_scope_schema_url": "",
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("server label %s = %q, want %q (%v)", k, l[k], v, l)
			}
		}
		if _, ok := l["server_port"]; ok {
			t.Errorf("server_port present for a Host without a port: %v", l)
		}
		if l["kn_route_tag"] != "kn:disabled" && l["kn_route_tag"] != "blue" {
			t.Errorf("kn_route_tag = %q", l["kn_route_tag"])
		}
	}
	if total != 4 {
		t.Errorf("server requests = %d, want 4 (probes excluded, rejection included)", total)
	}

	// Response body sizes: "ok" (2 bytes) x3 and the empty 503 rejection.
	var sizes []float64
	for _, s := range fams["http_server_response_body_size_bytes"].GetMetric() {
		sizes = append(sizes, s.GetHistogram().GetSampleSum())
		for _, b := range s.GetHistogram().GetBucket() {
			if b.GetUpperBound() == 0 && labelsOf(s)["http_response_status_code"] == "503" && labelsOf(s)["kn_route_tag"] == "kn:disabled" {
				// the 503 series holds the rejection (0 bytes) and the app's 503 ("ok")
				if b.GetCumulativeCount() != 1 {
					t.Errorf("le=0 bucket of 503 = %d, want 1 (a 0-byte body counts at le=0)", b.GetCumulativeCount())
				}
			}
		}
	}
	if got := sum(sizes); got != 6 {
		t.Errorf("response bytes = %v, want 6", got)
	}

	if v := fams["kn_serving_queue_depth"].GetMetric()[0].GetGauge().GetValue(); v != 3 {
		t.Errorf("queue depth = %v, want 3", v)
	}
	ti := labelsOf(fams["target_info"].GetMetric()[0])
	if ti["k8s_namespace_name"] != "default" || ti["service_name"] != "hello" || len(ti) != 2 {
		t.Errorf("target_info labels = %v", ti)
	}
	if strings.Contains(body, "revision_") {
		t.Errorf("1.15 names in the newest exposition:\n%s", body)
	}
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

func TestNewestRequestBodySize(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(1700000000, 0))
	m := newTestMetrics(t, clk, newestConfig())
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	h := m.RequestHandler(m.AppHandler(app))
	for _, n := range []int{0, 5, 7, 10000} {
		r := httptest.NewRequest(http.MethodPost, "http://svc.example:8080/upload", strings.NewReader(strings.Repeat("x", n)))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	rm := m.Collect()
	p := findPoint(t, rm, "http.server.request.body.size")
	if p.Count != 4 || p.Sum != 10012 {
		t.Errorf("count %d sum %v, want 4 and 10012", p.Count, p.Sum)
	}
	// bounds 0, 5, 10, ...: 0 -> le=0; 5 -> le=5; 7 -> le=10; 10000 -> le=10000.
	want := map[float64]uint64{0: 1, 5: 1, 10: 1, 10000: 1}
	for i, b := range p.Bounds {
		if p.Counts[i] != want[b] {
			t.Errorf("bucket le=%v = %d, want %d", b, p.Counts[i], want[b])
		}
	}
	if port, ok := attr(p.Attrs, "server.port"); !ok || !port.IsInt || port.Int != 8080 {
		t.Errorf("server.port = %+v, want the int 8080", port)
	}
	if meth, _ := attr(p.Attrs, "http.request.method"); meth.Str != "POST" {
		t.Errorf("method = %+v", meth)
	}
}

func findPoint(t *testing.T, rm *metricdata.ResourceMetrics, name string) metricdata.Point {
	t.Helper()
	for _, s := range rm.Scopes {
		for _, m := range s.Metrics {
			if m.Name == name {
				if len(m.Points) != 1 {
					t.Fatalf("%s has %d points, want 1", name, len(m.Points))
				}
				return m.Points[0]
			}
		}
	}
	t.Fatalf("no metric %s in %+v", name, rm)
	return metricdata.Point{}
}

func attr(as []metricdata.Attr, key string) (metricdata.Attr, bool) {
	for _, a := range as {
		if a.Key == key {
			return a, true
		}
	}
	return metricdata.Attr{}, false
}

func TestNewestTransport(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Unix(1700000000, 0))
	m := newTestMetrics(t, clk, newestConfig())
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer app.Close()
	inner := &http.Transport{}
	defer inner.CloseIdleConnections()
	rt := m.Transport(inner)

	// Known length, unknown length (chunked), and a refused connection.
	req, _ := http.NewRequest(http.MethodPut, app.URL, strings.NewReader("12345"))
	mustRoundTrip(t, rt, req)
	req, _ = http.NewRequest(http.MethodPut, app.URL, io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")))
	req.ContentLength = -1
	body := req.Body
	mustRoundTrip(t, rt, req)
	if req.Body != body {
		t.Error("RoundTrip modified the caller's request")
	}
	ln := closedAddr(t)
	req, _ = http.NewRequest("PURGE", "http://"+ln, nil)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Fatal("round trip to a closed port succeeded")
	}

	rm := m.Collect()
	var dur *metricdata.Metric
	for _, s := range rm.Scopes {
		for i := range s.Metrics {
			if s.Metrics[i].Name == "http.client.request.duration" {
				dur = &s.Metrics[i]
			}
		}
	}
	if dur == nil || len(dur.Points) != 2 {
		t.Fatalf("client duration = %+v, want two series (201 and the error)", dur)
	}
	var sawErr, saw201 bool
	for _, p := range dur.Points {
		if et, ok := attr(p.Attrs, "error.type"); ok {
			sawErr = true
			if et.Str != "net.OpError" {
				t.Errorf("error.type = %q, want net.OpError", et.Str)
			}
			if _, ok := attr(p.Attrs, "http.response.status_code"); ok {
				t.Error("status code on an error")
			}
			if m, _ := attr(p.Attrs, "http.request.method"); m.Str != "_OTHER" {
				t.Errorf("method = %q, want _OTHER", m.Str)
			}
			continue
		}
		saw201 = true
		if c, _ := attr(p.Attrs, "http.response.status_code"); c.Int != 201 || p.Count != 2 {
			t.Errorf("201 series = %+v", p)
		}
		if a, _ := attr(p.Attrs, "server.address"); a.Str != "127.0.0.1" {
			t.Errorf("server.address = %q", a.Str)
		}
		if _, ok := attr(p.Attrs, "server.port"); !ok {
			t.Error("server.port missing")
		}
	}
	if !sawErr || !saw201 {
		t.Errorf("points = %+v", dur.Points)
	}
	sizes := findMetric(rm, "http.client.request.body.size")
	var total float64
	for _, p := range sizes.Points {
		total += p.Sum
	}
	if total != 11 {
		t.Errorf("client body bytes = %v, want 11", total)
	}
}

func findMetric(rm *metricdata.ResourceMetrics, name string) *metricdata.Metric {
	for _, s := range rm.Scopes {
		for i := range s.Metrics {
			if s.Metrics[i].Name == name {
				return &s.Metrics[i]
			}
		}
	}
	return &metricdata.Metric{}
}

func mustRoundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

func TestGeneration115HasNoClientMetrics(t *testing.T) {
	verifyNoLeaks(t)
	m := newTestMetrics(t, clocktest.NewFakeClock(time.Now()), testIdentity)
	inner := http.DefaultTransport
	if m.Transport(inner) != inner {
		t.Error("1.15 wraps the transport; it has no client instruments")
	}
}

func TestCollectAfterStop(t *testing.T) {
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Now())
	cfg := newestConfig()
	m, err := NewMetrics(func() MetricsConfig { cfg.Clock = clk; return cfg }())
	if err != nil {
		t.Fatal(err)
	}
	serve(m.RequestHandler(timedApp(clk)), nil)
	if rm := m.Collect(); len(rm.Scopes) == 0 {
		t.Fatal("no scopes before Stop")
	}
	m.Stop()
	if rm := m.Collect(); len(rm.Scopes) != 0 || len(rm.Resource) != 2 {
		t.Errorf("after Stop: %+v, want the resource alone", rm)
	}
}

func TestPromName(t *testing.T) {
	tests := []struct {
		name, unit string
		kind       metricdata.Kind
		mono       bool
		want       string
	}{
		{"kn.serving.invocation.duration", "s", metricdata.Histogram, false, "kn_serving_invocation_duration_seconds"},
		{"kn.serving.queue.depth", "{request}", metricdata.Gauge, false, "kn_serving_queue_depth"},
		{"http.server.request.body.size", "By", metricdata.Histogram, false, "http_server_request_body_size_bytes"},
		{"go.memory.allocated", "By", metricdata.Sum, true, "go_memory_allocated_bytes_total"},
		{"go.memory.allocations", "{allocation}", metricdata.Sum, true, "go_memory_allocations_total"},
		{"go.memory.used", "By", metricdata.Sum, false, "go_memory_used_bytes"},
		{"go.config.gogc", "%", metricdata.Sum, false, "go_config_gogc_percent"},
		{"go.goroutine.count", "{goroutine}", metricdata.Sum, false, "go_goroutine_count"},
		{"requests.total", "1", metricdata.Sum, true, "requests_total"},
		{"latency_seconds", "s", metricdata.Histogram, false, "latency_seconds"},
		{"1st-metric/ü", "ms", metricdata.Gauge, false, "_1st_metric___milliseconds"},
	}
	for _, tc := range tests {
		m := &metricdata.Metric{Name: tc.name, Unit: tc.unit, Kind: tc.kind, Monotonic: tc.mono}
		if got := promName(m); got != tc.want {
			t.Errorf("promName(%q, %q) = %q, want %q", tc.name, tc.unit, got, tc.want)
		}
	}
}

// TestPromtoolCheckNewest lints the newest exposition with promtool: it
// must report nothing at all (the names are OpenTelemetry's, with units).
func TestPromtoolCheckNewest(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found in CI; .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CI runs this test")
	}
	verifyNoLeaks(t)
	clk := clocktest.NewFakeClock(time.Now())
	cfg := newestConfig()
	cfg.QueueDepth = func() int { return 1 }
	m := newTestMetrics(t, clk, cfg)
	serve(testChain(m, clk, timedApp(clk)), map[string]string{"X-App-Ms": "3"})
	body, _ := scrape(t, m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out.String(), body)
	}
}

// TestHeaderLabelsAreSafe: the route tag and the host come from request
// headers; bytes that are not printable ASCII become '_' in every
// generation's labels, so a scrape never fails on invalid UTF-8.
func TestHeaderLabelsAreSafe(t *testing.T) {
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		t.Run(gen.Name, func(t *testing.T) {
			verifyNoLeaks(t)
			clk := clocktest.NewFakeClock(time.Now())
			cfg := testIdentity
			cfg.Generation = gen
			cfg.RouteTag = routeTagHeaders
			m := newTestMetrics(t, clk, cfg)
			r := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
			r.Host = "h\xffst"
			r.Header.Set("Knative-Serving-Tag", "t\xfe\x01g")
			m.RequestHandler(timedApp(clk)).ServeHTTP(httptest.NewRecorder(), r)
			body, fams := scrape(t, m) // fails on a parse error
			if strings.ContainsAny(body, "\xff\xfe\x01") {
				t.Errorf("raw header bytes in the exposition:\n%s", body)
			}
			name, route := "revision_request_count", "route_tag"
			if gen == GenerationNewest {
				name, route = "http_server_request_duration_seconds", "kn_route_tag"
			}
			l := labelsOf(fams[name].GetMetric()[0])
			if l[route] != "t__g" {
				t.Errorf("%s = %q, want t__g", route, l[route])
			}
			if gen == GenerationNewest && l["server_address"] != "h_st" {
				t.Errorf("server_address = %q, want h_st", l["server_address"])
			}
		})
	}
}
