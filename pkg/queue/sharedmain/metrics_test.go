package sharedmain

import (
	"context"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	clocktest "k8s.io/utils/clock/testing"
)

// metricsEnvVars are the variables metricsEnv reads; tests clear them, as
// setEnv (config_test.go) clears only config's.
var metricsEnvVars = []string{
	"METRICS_PROMETHEUS_HOST", "METRICS_PROMETHEUS_PORT", "QP_OBSERVABILITY_GENERATION",
	"OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_TIMEOUT",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
	"OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
	"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
	"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "POD_NAME",
}

func clearMetricsEnv(t *testing.T) {
	for _, k := range metricsEnvVars {
		t.Setenv(k, "")
	}
}

func TestMetricsOutput(t *testing.T) {
	const (
		v115   = "SERVING_REQUEST_METRICS_BACKEND"
		newest = "OBSERVABILITY_CONFIG requestMetrics.protocol"
	)
	g115, gNew := pkgobs.Generation115, pkgobs.GenerationNewest
	tests := []struct {
		name              string
		gen               *pkgobs.Generation
		backend, protocol string
		output, source    string
		warnings          []string // substrings, one per warning
	}{
		{name: "nothing set", gen: g115, protocol: "none"},
		{name: "both empty", gen: gNew},
		{name: "1.15 none", gen: g115, backend: "none", protocol: "none"},
		{name: "1.15 prometheus", gen: g115, backend: "prometheus", protocol: "none", output: "prometheus", source: v115 + "=prometheus"},
		{name: "1.15 variable in the newest generation", gen: gNew, backend: "prometheus", protocol: "none", output: "prometheus", source: v115 + "=prometheus"},
		{name: "newest prometheus", gen: gNew, protocol: "prometheus", output: "prometheus", source: newest + "=prometheus"},
		{name: "both prometheus, 1.15: the 1.15 variable is named", gen: g115, backend: "prometheus", protocol: "prometheus", output: "prometheus", source: v115 + "=prometheus"},
		{name: "both prometheus, newest: the newest field is named", gen: gNew, backend: "prometheus", protocol: "prometheus", output: "prometheus", source: newest + "=prometheus"},
		{name: "newest grpc", gen: gNew, protocol: "grpc", output: "grpc", source: newest + "=grpc"},
		{name: "newest http/protobuf", gen: gNew, protocol: "http/protobuf", output: "http/protobuf", source: newest + "=http/protobuf"},
		{name: "grpc beats the 1.15 prometheus in the newest generation", gen: gNew, backend: "prometheus", protocol: "grpc", output: "grpc", source: newest + "=grpc"},
		{name: "grpc forced into 1.15", gen: g115, protocol: "grpc",
			warnings: []string{newest + `="grpc" is not supported in the 1.15 generation (only "prometheus" is): request metrics are off`}},
		{name: "1.15 opencensus", gen: g115, backend: "opencensus", protocol: "none",
			warnings: []string{v115 + `="opencensus" is not supported in the 1.15 generation (only "prometheus" is): request metrics are off`}},
		{name: "1.15 grpc is not a 1.15 value", gen: gNew, backend: "grpc",
			warnings: []string{v115 + `="grpc" is not supported in the newest generation`}},
		{name: "1.15 unknown", gen: g115, backend: "stackdriver",
			warnings: []string{v115 + `="stackdriver" is not a known request-metrics backend (use "prometheus" or "none"): request metrics are off`}},
		{name: "newest unknown, case matters", gen: gNew, protocol: "Prometheus",
			warnings: []string{newest + `="Prometheus" is not a known request-metrics backend (use "prometheus", "grpc" or "http/protobuf" or "none")`}},
		{name: "unsupported 1.15, prometheus newest", gen: g115, backend: "opencensus", protocol: "prometheus", output: "prometheus", source: newest + "=prometheus",
			warnings: []string{v115 + `="opencensus" is not supported in the 1.15 generation (only "prometheus" is); it is ignored, request metrics are on because of ` + newest + "=prometheus"}},
		{name: "both unsupported", gen: g115, backend: "opencensus", protocol: "grpc",
			warnings: []string{v115 + `="opencensus"`, newest + `="grpc"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			output, source, warnings := metricsOutput(tc.gen, tc.backend, tc.protocol)
			if output != tc.output || source != tc.source {
				t.Errorf("metricsOutput(%s, %q, %q) = %q, %q; want %q, %q", tc.gen.Name, tc.backend, tc.protocol, output, source, tc.output, tc.source)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d", warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestExportInterval(t *testing.T) {
	tests := []struct {
		configured time.Duration
		env        string
		want       time.Duration
		err        string
	}{
		{0, "", time.Minute, ""},
		{5 * time.Second, "", 5 * time.Second, ""},
		{5 * time.Second, "1500", 1500 * time.Millisecond, ""},
		{0, "0", 0, `OTEL_METRIC_EXPORT_INTERVAL: "0" is not a positive number of milliseconds`},
		{0, "1s", 0, `OTEL_METRIC_EXPORT_INTERVAL: "1s" is not a positive number of milliseconds`},
		{0, "-5", 0, `OTEL_METRIC_EXPORT_INTERVAL: "-5" is not a positive number of milliseconds`},
		{0, "99999999999999999", 0, `OTEL_METRIC_EXPORT_INTERVAL: "99999999999999999" is not a positive number of milliseconds`},
	}
	for _, tc := range tests {
		got, err := exportInterval(tc.configured, tc.env)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("exportInterval(%v, %q) = %v, %v; want %v, %q", tc.configured, tc.env, got, err, tc.want, tc.err)
		}
	}
}

func TestUserMetricsAddr(t *testing.T) {
	tests := []struct {
		name, endpoint, host, port string
		want, wantErr              string
	}{
		{name: "default", want: ":9091"},
		{name: "endpoint", endpoint: "127.0.0.1:9100", want: "127.0.0.1:9100"},
		{name: "endpoint port 0", endpoint: "127.0.0.1:0", want: "127.0.0.1:0"},
		{name: "endpoint without host", endpoint: ":9200", want: ":9200"},
		{name: "port env", port: "9092", want: ":9092"},
		{name: "host env", host: "127.0.0.1", want: "127.0.0.1:9091"},
		{name: "env beats endpoint", endpoint: "10.1.2.3:9100", host: "127.0.0.1", port: "9300", want: "127.0.0.1:9300"},
		{name: "port env beats endpoint port only", endpoint: "127.0.0.2:9100", port: "9300", want: "127.0.0.2:9300"},
		{name: "IPv6 host", host: "::1", port: "1024", want: "[::1]:1024"},
		{name: "highest port", port: "65535", want: ":65535"},
		{name: "port below 1024", port: "1023", wantErr: `METRICS_PROMETHEUS_PORT: "1023" is not a port number in 1024-65535`},
		{name: "port 0 in env", port: "0", wantErr: "METRICS_PROMETHEUS_PORT"},
		{name: "port too high", port: "65536", wantErr: "METRICS_PROMETHEUS_PORT"},
		{name: "port not a number", port: "metrics", wantErr: "METRICS_PROMETHEUS_PORT"},
		{name: "endpoint not host:port", endpoint: "collector", wantErr: `OBSERVABILITY_CONFIG requestMetrics.endpoint "collector" is not host:port`},
		{name: "endpoint named port", endpoint: "localhost:http", wantErr: `"http" is not a port number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userMetricsAddr(tc.endpoint, metricsEnv{PrometheusHost: tc.host, PrometheusPort: tc.port})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("userMetricsAddr = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("userMetricsAddr = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSetupMetricsOff: backends that turn request metrics off add no layer,
// no server, log their warning, and do not read (so do not validate) the
// METRICS_PROMETHEUS_* variables.
func TestSetupMetricsOff(t *testing.T) {
	tests := []struct {
		backend, protocol string
		warn              string
	}{
		{"", "none", ""},
		{"none", "none", ""},
		{"opencensus", "none", `SERVING_REQUEST_METRICS_BACKEND="opencensus" is not supported`},
		{"", "grpc", `requestMetrics.protocol="grpc" is not supported in the 1.15 generation`},
		{"", "http/protobuf", `requestMetrics.protocol="http/protobuf" is not supported in the 1.15 generation`},
		{"bogus", "none", `"bogus" is not a known request-metrics backend`},
	}
	for _, tc := range tests {
		t.Run(tc.backend+"/"+tc.protocol, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			t.Setenv("METRICS_PROMETHEUS_PORT", "80") // would be an error if read
			core, logs := observer.New(zapcore.DebugLevel)
			obs := observability{config: DefaultObservabilityConfig(), gen: pkgobs.Generation115}
			obs.config.RequestMetrics.Protocol = tc.protocol
			hooks, err := newMetricsHooks(&config{ServingRequestMetricsBackend: tc.backend}, obs, Env{}, zap.New(core).Sugar(), nil, clocktest.NewFakeClock(timeZero))
			if err != nil {
				t.Fatalf("newMetricsHooks: %v", err)
			}
			hooks.flush()
			if hooks.requestMetrics != nil || hooks.appMetrics != nil || len(hooks.servers) != 0 {
				t.Errorf("hooks = %+v, want no layers and no server", hooks)
			}
			warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
			switch {
			case tc.warn == "" && len(warns) != 0:
				t.Errorf("warnings %v, want none", warns)
			case tc.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0].Message, tc.warn)):
				t.Errorf("warnings %v, want one containing %q", warns, tc.warn)
			}
		})
	}
}

// freePort returns a loopback port that was free a moment ago, for the
// variables that must name a real port (1024-65535).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// verifyNoLeaksClosingClients fails the test if goroutines started during it
// outlive every cleanup registered after this call. It first closes the idle
// connections of bareClient (run_test.go), whose goroutines would otherwise
// be counted.
func verifyNoLeaksClosingClients(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		bareClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
}

// countingApp answers "ok" (or the code in X-Code) and counts the requests
// that reached it.
func countingApp(t *testing.T, hits *atomic.Int64) *httptest.Server {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if c := r.Header.Get("X-Code"); c != "" {
			n, _ := strconv.Atoi(c)
			w.WriteHeader(n)
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	return app
}

func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("expfmt: %v\n%s", err, body)
	}
	return fams
}

// counterValues maps each sample of a counter family to its value, keyed
// by "response_code route_tag" (route_tag absent for app metrics).
func counterValues(f *dto.MetricFamily) map[string]float64 {
	m := map[string]float64{}
	if f == nil {
		return m
	}
	for _, mt := range f.Metric {
		var code, route string
		for _, l := range mt.Label {
			switch l.GetName() {
			case "response_code":
				code = l.GetValue()
			case "route_tag":
				route = " " + l.GetValue()
			}
		}
		m[code+route] = mt.GetCounter().GetValue()
	}
	return m
}

// TestRunRequestMetrics runs queue-proxy with request metrics turned on by
// each generation's variable, sends known traffic, and reads :9091 back
// with Prometheus' parser.
func TestRunRequestMetrics(t *testing.T) {
	tests := []struct {
		name  string
		env   func(t *testing.T) map[string]string
		check func(t *testing.T, fams map[string]*dto.MetricFamily)
	}{
		{"1.15 SERVING_REQUEST_METRICS_BACKEND", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG":            "",
				"SERVING_REQUEST_METRICS_BACKEND": "prometheus",
				"METRICS_PROMETHEUS_HOST":         "127.0.0.1",
				"METRICS_PROMETHEUS_PORT":         freePort(t),
			}
		}, check115},
		{"newest OBSERVABILITY_CONFIG", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"prometheus","endpoint":"127.0.0.1:0"}}`,
			}
		}, checkNewest},
		{"OBSERVABILITY_CONFIG, forced to 1.15", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG":        `{"requestMetrics":{"protocol":"prometheus","endpoint":"127.0.0.1:0"}}`,
				"QP_OBSERVABILITY_GENERATION": "1.15",
			}
		}, check115},
		{"1.15 variable, forced to the newest", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG":            "",
				"QP_OBSERVABILITY_GENERATION":     "newest",
				"SERVING_REQUEST_METRICS_BACKEND": "prometheus",
				"METRICS_PROMETHEUS_HOST":         "127.0.0.1",
				"METRICS_PROMETHEUS_PORT":         freePort(t),
			}
		}, checkNewest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			clearMetricsEnv(t)
			var hits atomic.Int64
			app := countingApp(t, &hits)
			env := tc.env(t)
			env["CONTAINER_CONCURRENCY"] = "4"
			q := startQP(t, app, env)
			if q.addrs[serverUserMetrics] == "" {
				t.Fatalf("no %s server among %v", serverUserMetrics, q.addrs)
			}
			main := q.url(serverMain, "/")

			traffic := []struct {
				header map[string]string
				code   int
				app    bool // reaches the user container
			}{
				{nil, 200, true},
				{nil, 200, true},
				{map[string]string{"Knative-Serving-Tag": "canary", "Knative-Serving-Default-Route": "false"}, 200, true},
				{map[string]string{"Knative-Serving-Default-Route": "true", "X-Code": "404"}, 404, true},
				// Probes: answered by the drainer, or passed to the app but not counted.
				{map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"}, 200, false},
				{map[string]string{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"}, 200, false},
				{map[string]string{"K-Kubelet-Probe": "queue"}, 200, true},
				{map[string]string{"K-Network-Probe": "other"}, 200, true},
			}
			wantHits := int64(0)
			for i, r := range traffic {
				if got := get(t, main, r.header); got.code != r.code {
					t.Fatalf("request %d: %d %q, want %d", i, got.code, got.body, r.code)
				}
				if r.app {
					wantHits++
				}
			}
			if hits.Load() != wantHits {
				t.Fatalf("the app saw %d requests, want %d (probes must reach it for this test to mean anything)", hits.Load(), wantHits)
			}

			r := get(t, q.url(serverUserMetrics, "/metrics"), nil)
			if r.code != 200 || r.header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
				t.Fatalf("GET /metrics: %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
			}
			tc.check(t, parseMetrics(t, r.body))

			req, _ := http.NewRequest(http.MethodPost, q.url(serverUserMetrics, "/metrics"), strings.NewReader("x"))
			if r := do(t, nil, req); r.code != http.StatusMethodNotAllowed {
				t.Errorf("POST /metrics: %d, want 405", r.code)
			}
			if r := get(t, q.url(serverUserMetrics, "/"), nil); r.code != http.StatusNotFound {
				t.Errorf("GET /: %d, want 404", r.code)
			}
			// The autoscaler port is untouched.
			if r := get(t, q.url(serverMetrics, "/metrics"), nil); r.header.Get("Content-Type") != "application/protobuf" {
				t.Errorf(":9090 Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

// check115 checks the 1.15 families after TestRunRequestMetrics' traffic.
func check115(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	if got, want := counterValues(fams["revision_request_count"]), map[string]float64{"200 DISABLED": 2, "200 canary": 1, "404 DEFAULT": 1}; !equalCounts(got, want) {
		t.Errorf("revision_request_count = %v, want %v", got, want)
	}
	if got, want := counterValues(fams["revision_app_request_count"]), map[string]float64{"200": 3, "404": 1}; !equalCounts(got, want) {
		t.Errorf("revision_app_request_count = %v, want %v", got, want)
	}
	for _, name := range []string{"revision_request_latencies", "revision_app_request_latencies"} {
		if f := fams[name]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM || len(f.Metric) == 0 {
			t.Errorf("%s: %v, want a histogram", name, f)
		}
	}
	want := map[string]string{
		"configuration_name": "hello", "container_name": "queue-proxy", "namespace_name": "default",
		"pod_name": "hello-00001-deployment-abc", "response_code": "404", "response_code_class": "4xx",
		"revision_name": "hello-00001", "route_tag": "DEFAULT", "service_name": "hello",
	}
	found := false
	for _, mt := range fams["revision_request_count"].Metric {
		got := map[string]string{}
		for _, l := range mt.Label {
			got[l.GetName()] = l.GetValue()
		}
		if got["response_code"] == "404" {
			found = true
			if len(got) != len(want) {
				t.Errorf("labels %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("label %s = %q, want %q", k, got[k], v)
				}
			}
		}
	}
	if !found {
		t.Error("no 404 sample")
	}
	if f := fams["revision_queue_depth"]; f == nil || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 0 {
		t.Errorf("revision_queue_depth = %v, want one gauge at 0 (nothing in flight)", f)
	}
	if f := fams["revision_go_heap_alloc"]; f == nil || f.Metric[0].GetGauge().GetValue() <= 0 {
		t.Errorf("revision_go_heap_alloc = %v, want > 0", f)
	}
}

// checkNewest checks the newest families after TestRunRequestMetrics'
// traffic: the same requests, counted in the OpenTelemetry-era names.
func checkNewest(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for name := range fams {
		if strings.HasPrefix(name, "revision_") {
			t.Errorf("1.15 family %s in the newest exposition", name)
		}
	}
	checks := []struct {
		family string
		labels []string
		want   map[string]float64
	}{
		{"http_server_request_duration_seconds", []string{"http_response_status_code", "kn_route_tag"},
			map[string]float64{"200 kn:disabled": 2, "200 canary": 1, "404 kn:default": 1}},
		{"http_server_response_body_size_bytes", []string{"http_response_status_code", "kn_route_tag"},
			map[string]float64{"200 kn:disabled": 2, "200 canary": 1, "404 kn:default": 1}},
		{"kn_serving_invocation_duration_seconds", []string{"http_response_status_code"},
			map[string]float64{"200": 3, "404": 1}},
		// Every upstream call: the probes that reach the app too.
		{"http_client_request_duration_seconds", []string{"http_response_status_code", "server_address"},
			map[string]float64{"200 127.0.0.1": 5, "404 127.0.0.1": 1}},
	}
	for _, c := range checks {
		if got := histogramCounts(fams[c.family], c.labels...); !equalCounts(got, c.want) {
			t.Errorf("%s = %v, want %v", c.family, got, c.want)
		}
	}
	if f := fams["kn_serving_queue_depth"]; f == nil || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 0 {
		t.Errorf("kn_serving_queue_depth = %v, want one gauge at 0", f)
	}
	if f := fams["target_info"]; f == nil || labelValue(f.Metric[0], "k8s_namespace_name") != "default" || labelValue(f.Metric[0], "kn_revision_name") != "hello-00001" {
		t.Errorf("target_info = %v", f)
	}
	for _, name := range []string{"go_memory_used_bytes", "go_goroutine_count", "go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total"} {
		if fams[name] == nil {
			t.Errorf("no %s family", name)
		}
	}
}

// histogramCounts maps the values of the given labels (joined by spaces)
// to the sample count of each series of a histogram family.
func histogramCounts(f *dto.MetricFamily, labels ...string) map[string]float64 {
	m := map[string]float64{}
	if f == nil {
		return m
	}
	for _, mt := range f.Metric {
		var key []string
		for _, l := range labels {
			key = append(key, labelValue(mt, l))
		}
		m[strings.Join(key, " ")] += float64(mt.GetHistogram().GetSampleCount())
	}
	return m
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRunRequestMetricsOff: without a backend there is no user-metrics
// server and no request-metric layer; with an unsupported one, the same.
func TestRunRequestMetricsOff(t *testing.T) {
	for _, env := range []map[string]string{
		nil,
		{"SERVING_REQUEST_METRICS_BACKEND": "opencensus"},
		{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"zipkin","endpoint":"collector:4317"}}`},
		{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"grpc"}}`, "QP_OBSERVABILITY_GENERATION": "1.15"},
	} {
		t.Run(strings.Join(mapKV(env), ","), func(t *testing.T) {
			clearMetricsEnv(t)
			q := startQP(t, echoApp(t), env)
			if a, ok := q.addrs[serverUserMetrics]; ok {
				t.Errorf("user-metrics server at %s, want none", a)
			}
		})
	}
}

func mapKV(m map[string]string) []string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	return s
}

// TestRunMetricsPortErrors: a bad METRICS_PROMETHEUS_PORT stops startup when
// request metrics are on, naming the variable; a port in use names the
// server.
func TestRunMetricsPortErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())
	for _, tc := range []struct {
		name, host, port, wantErr string
	}{
		{"privileged port", "", "80", "METRICS_PROMETHEUS_PORT"},
		{"not a number", "", "ninety", "METRICS_PROMETHEUS_PORT"},
		{"port in use", "127.0.0.1", busyPort, "server " + serverUserMetrics},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			env := baseEnv()
			env["QUEUE_SERVING_PORT"], env["QP_ADMIN_PORT"], env["QP_METRICS_PORT"] = "0", "0", "0"
			env["SERVING_REQUEST_METRICS_BACKEND"] = "prometheus"
			setEnv(t, env)
			t.Setenv("METRICS_PROMETHEUS_HOST", tc.host)
			t.Setenv("METRICS_PROMETHEUS_PORT", tc.port)
			if err := runExpectingFailure(t); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// runExpectingFailure runs queue-proxy with the current environment and
// returns its startup error. Should it start instead, the test fails and
// queue-proxy is shut down.
func runExpectingFailure(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktest.NewFakeClock(timeZero)
	done := make(chan error, 1)
	started := make(chan map[string]string, 1)
	go func() {
		done <- run(ctx, runtimeDeps{clock: clk, listening: func(m map[string]string) { started <- m }})
	}()
	select {
	case err := <-done:
		return err
	case addrs := <-started:
		t.Errorf("queue-proxy started (%v), want a startup error", addrs)
		cancel()
		for {
			select {
			case <-done:
				return nil
			case <-time.After(time.Millisecond):
				clk.Step(time.Second) // through the drain's quiet period
			}
		}
	}
}

// timeZero is where the fake clocks of these tests start.
var timeZero = time.Unix(1_700_000_000, 0)

// TestRunOTLPErrors: bad OTLP settings are startup errors naming what is
// wrong (exit 1 in main).
func TestRunOTLPErrors(t *testing.T) {
	grpc := `{"requestMetrics":{"protocol":"grpc","endpoint":"http://127.0.0.1:4317"}}`
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"unparsable endpoint", map[string]string{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"grpc","endpoint":"10.0.0.1:4317"}}`}, "requestMetrics.endpoint"},
		{"export interval", map[string]string{"OBSERVABILITY_CONFIG": grpc, "OTEL_METRIC_EXPORT_INTERVAL": "10s"}, "OTEL_METRIC_EXPORT_INTERVAL"},
		{"export timeout", map[string]string{"OBSERVABILITY_CONFIG": grpc, "OTEL_METRIC_EXPORT_TIMEOUT": "-1"}, "OTEL_METRIC_EXPORT_TIMEOUT"},
		{"exporter timeout", map[string]string{"OBSERVABILITY_CONFIG": grpc, "OTEL_EXPORTER_OTLP_TIMEOUT": "abc"}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"compression", map[string]string{"OBSERVABILITY_CONFIG": grpc, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "brotli"}, "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"},
		{"certificate", map[string]string{"OBSERVABILITY_CONFIG": grpc, "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"generation", map[string]string{"QP_OBSERVABILITY_GENERATION": "1.19"}, "QP_OBSERVABILITY_GENERATION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			clearMetricsEnv(t)
			env := baseEnv()
			env["QUEUE_SERVING_PORT"], env["QP_ADMIN_PORT"], env["QP_METRICS_PORT"] = "0", "0", "0"
			for k, v := range tc.env {
				env[k] = v
			}
			setEnv(t, env)
			if err := runExpectingFailure(t); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("run = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
}

// TestRunOTLPExport runs queue-proxy with requestMetrics.protocol
// http/protobuf against a fake collector, decodes what it receives with the
// OTLP protobuf types, and checks the periodic exports and the final one at
// shutdown. (test/otel checks the same against the real Collector.)
func TestRunOTLPExport(t *testing.T) {
	verifyNoLeaksClosingClients(t)
	clearMetricsEnv(t)
	var mu sync.Mutex
	var got []*colmetricspb.ExportMetricsServiceRequest
	var paths []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// An export cancelled mid-upload (a periodic one cut by the
			// shutdown): the body is partial, as a real collector sees it.
			return
		}
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
		}
		mu.Lock()
		got = append(got, &req)
		paths = append(paths, r.URL.Path+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("X-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	count := func(name string) (n uint64, requests int) {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			return 0, 0
		}
		for _, rm := range got[len(got)-1].GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() == name {
						for _, p := range m.GetHistogram().GetDataPoints() {
							n += p.GetCount()
						}
					}
				}
			}
		}
		return n, len(got)
	}

	q := startQP(t, echoApp(t), map[string]string{
		"OBSERVABILITY_CONFIG":        `{"requestMetrics":{"protocol":"http/protobuf","endpoint":"` + collector.URL + `/v1/metrics","exportInterval":50000000}}`,
		"OTEL_EXPORTER_OTLP_HEADERS":  "x-token=abc",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test",
		"POD_NAME":                    "hello-00001-deployment-abc",
		"CONTAINER_CONCURRENCY":       "2",
		"QP_OBSERVABILITY_GENERATION": "",
	})
	for i := 0; i < 3; i++ {
		if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 {
			t.Fatalf("request: %d", r.code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := count("http.server.request.duration"); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no periodic export with the three requests")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// One more request, then shutdown: the final export carries it.
	get(t, q.url(serverMain, "/"), nil)
	q.stop(t)
	if n, _ := count("http.server.request.duration"); n != 4 {
		t.Errorf("final export has %d requests, want 4", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if paths[0] != "/v1/metrics application/x-protobuf abc" {
		t.Errorf("request = %q, want path /v1/metrics, protobuf, the header", paths[0])
	}
	res := map[string]string{}
	for _, kv := range got[len(got)-1].GetResourceMetrics()[0].GetResource().GetAttributes() {
		res[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	for k, v := range map[string]string{
		"service.name": "hello", "k8s.namespace.name": "default", "k8s.pod.name": "hello-00001-deployment-abc",
		"container.name": "queue-proxy", "kn.revision.name": "hello-00001", "deployment.environment": "test",
	} {
		if res[k] != v {
			t.Errorf("resource %s = %q, want %q (%v)", k, res[k], v, res)
		}
	}
}
