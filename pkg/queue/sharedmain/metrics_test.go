package sharedmain

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
var metricsEnvVars = []string{"METRICS_PROMETHEUS_HOST", "METRICS_PROMETHEUS_PORT"}

func clearMetricsEnv(t *testing.T) {
	for _, k := range metricsEnvVars {
		t.Setenv(k, "")
	}
}

func TestMetricsBackend(t *testing.T) {
	const (
		v115   = "SERVING_REQUEST_METRICS_BACKEND"
		newest = "OBSERVABILITY_CONFIG requestMetrics.protocol"
	)
	tests := []struct {
		name              string
		backend, protocol string
		on                bool
		source            string
		warnings          []string // substrings, one per warning
	}{
		{name: "nothing set", protocol: "none"},
		{name: "both empty"},
		{name: "1.15 none", backend: "none", protocol: "none"},
		{name: "1.15 prometheus", backend: "prometheus", protocol: "none", on: true, source: v115 + "=prometheus"},
		{name: "newest prometheus", protocol: "prometheus", on: true, source: newest + "=prometheus"},
		{name: "both prometheus: the 1.15 variable is named", backend: "prometheus", protocol: "prometheus", on: true, source: v115 + "=prometheus"},
		{name: "1.15 opencensus", backend: "opencensus", protocol: "none",
			warnings: []string{v115 + `="opencensus" is not supported (only "prometheus" is): request metrics are off`}},
		{name: "newest grpc", protocol: "grpc",
			warnings: []string{newest + `="grpc" is not supported (only "prometheus" is): request metrics are off`}},
		{name: "newest http/protobuf", protocol: "http/protobuf",
			warnings: []string{newest + `="http/protobuf" is not supported`}},
		{name: "1.15 unknown", backend: "stackdriver",
			warnings: []string{v115 + `="stackdriver" is not a known request-metrics backend (use "prometheus" or "none"): request metrics are off`}},
		{name: "newest unknown, case matters", protocol: "Prometheus",
			warnings: []string{newest + `="Prometheus" is not a known request-metrics backend`}},
		{name: "unsupported 1.15, prometheus newest", backend: "opencensus", protocol: "prometheus", on: true, source: newest + "=prometheus",
			warnings: []string{v115 + `="opencensus" is not supported (only "prometheus" is); it is ignored, request metrics are on because of ` + newest + "=prometheus"}},
		{name: "prometheus 1.15, unsupported newest", backend: "prometheus", protocol: "grpc", on: true, source: v115 + "=prometheus",
			warnings: []string{newest + `="grpc" is not supported (only "prometheus" is); it is ignored`}},
		{name: "both unsupported", backend: "opencensus", protocol: "grpc",
			warnings: []string{v115 + `="opencensus"`, newest + `="grpc"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			on, source, warnings := metricsBackend(tc.backend, tc.protocol)
			if on != tc.on || source != tc.source {
				t.Errorf("metricsBackend(%q, %q) = %v, %q; want %v, %q", tc.backend, tc.protocol, on, source, tc.on, tc.source)
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
		{"", "grpc", `requestMetrics.protocol="grpc" is not supported`},
		{"", "http/protobuf", `requestMetrics.protocol="http/protobuf" is not supported`},
		{"bogus", "none", `"bogus" is not a known request-metrics backend`},
	}
	for _, tc := range tests {
		t.Run(tc.backend+"/"+tc.protocol, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			t.Setenv("METRICS_PROMETHEUS_PORT", "80") // would be an error if read
			core, logs := observer.New(zapcore.DebugLevel)
			obs := observability{config: DefaultObservabilityConfig()}
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
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"1.15 SERVING_REQUEST_METRICS_BACKEND", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG":            "",
				"SERVING_REQUEST_METRICS_BACKEND": "prometheus",
				"METRICS_PROMETHEUS_HOST":         "127.0.0.1",
				"METRICS_PROMETHEUS_PORT":         freePort(t),
			}
		}},
		{"newest OBSERVABILITY_CONFIG", func(t *testing.T) map[string]string {
			return map[string]string{
				"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"prometheus","endpoint":"127.0.0.1:0"}}`,
			}
		}},
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
			fams := parseMetrics(t, r.body)
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
		{"OBSERVABILITY_CONFIG": `{"requestMetrics":{"protocol":"grpc","endpoint":"collector:4317"}}`},
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
