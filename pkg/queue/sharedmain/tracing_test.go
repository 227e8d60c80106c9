package sharedmain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	"go.opencensus.io/trace"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	clocktest "k8s.io/utils/clock/testing"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
)

func TestResolveTracing(t *testing.T) {
	cases := []struct {
		name         string
		cfg          config
		obs          TracingConfig
		wantExporter string
		wantEndpoint string
		wantSource   string // substring
		wantWarn     string // substring of the one warning; "" = none
		wantErr      bool
		env          map[string]string
	}{
		{name: "nothing set", obs: TracingConfig{Protocol: ProtocolNone}},
		{name: "1.15 zipkin", cfg: config{TracingConfigBackend: "zipkin", TracingConfigZipkinEndpoint: "http://zipkin:9411/api/v2/spans", TracingConfigSampleRate: 0.1},
			obs: TracingConfig{Protocol: ProtocolNone}, wantExporter: "zipkin", wantEndpoint: "http://zipkin:9411/api/v2/spans", wantSource: "sample rate 0.1"},
		{name: "1.15 zipkin debug", cfg: config{TracingConfigBackend: "zipkin", TracingConfigZipkinEndpoint: "https://z/api/v2/spans", TracingConfigDebug: true},
			wantExporter: "zipkin", wantEndpoint: "https://z/api/v2/spans", wantSource: "every request sampled"},
		{name: "1.15 unset backend is off", cfg: config{TracingConfigZipkinEndpoint: "http://zipkin:9411/api/v2/spans"},
			wantWarn: "TRACING_CONFIG_BACKEND is not zipkin"},
		{name: "1.15 none", cfg: config{TracingConfigBackend: "none"}},
		{name: "1.15 zipkin without endpoint", cfg: config{TracingConfigBackend: "zipkin"}, wantWarn: "is empty: tracing is off"},
		{name: "1.15 zipkin with a bad endpoint", cfg: config{TracingConfigBackend: "zipkin", TracingConfigZipkinEndpoint: "zipkin:9411"},
			wantWarn: "is not an http(s) URL"},
		{name: "1.15 other backend", cfg: config{TracingConfigBackend: "stackdriver"}, wantWarn: `"stackdriver" is not supported`},
		{name: "newest OTLP grpc", obs: TracingConfig{Protocol: "grpc", Endpoint: "collector:4317", SamplingRate: 0.25},
			wantExporter: "grpc", wantEndpoint: "collector:4317", wantSource: "ParentBased{root:TraceIDRatioBased{0.25}"},
		{name: "newest OTLP http/protobuf, rate 1", obs: TracingConfig{Protocol: "http/protobuf", SamplingRate: 1},
			wantExporter: "http/protobuf", wantSource: "AlwaysOnSampler"},
		{name: "newest OTLP, rate 0", obs: TracingConfig{Protocol: "grpc"}, wantExporter: "grpc", wantSource: "AlwaysOffSampler"},
		{name: "newest OTLP wins over 1.15 zipkin", cfg: config{TracingConfigBackend: "zipkin", TracingConfigZipkinEndpoint: "http://z/api/v2/spans"},
			obs: TracingConfig{Protocol: "grpc", Endpoint: "c:4317"}, wantExporter: "grpc", wantEndpoint: "c:4317", wantSource: "OBSERVABILITY_CONFIG"},
		{name: "OTEL_TRACES_SAMPLER_ARG overrides for the >= 1 test", obs: TracingConfig{Protocol: "grpc", SamplingRate: 0.1},
			env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1"}, wantExporter: "grpc", wantSource: "AlwaysOnSampler"},
		{name: "unparsable OTEL_TRACES_SAMPLER_ARG is fatal", obs: TracingConfig{Protocol: "grpc", SamplingRate: 0.1},
			env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "half"}, wantErr: true},
		{name: "OTEL_TRACES_SAMPLER decides", obs: TracingConfig{Protocol: "grpc", SamplingRate: 1},
			env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, wantExporter: "grpc", wantSource: "TraceIDRatioBased{0.5}"},
		{name: "a bad OTEL_TRACES_SAMPLER is a warning", obs: TracingConfig{Protocol: "grpc", SamplingRate: 1},
			env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, wantExporter: "grpc", wantSource: "ParentBased{root:AlwaysOnSampler", wantWarn: "OTEL_TRACES_SAMPLER"},
		{name: "newest stdout", obs: TracingConfig{Protocol: "stdout"}, wantExporter: "stdout", wantSource: "OBSERVABILITY_CONFIG"},
		{name: "newest zipkin wins over 1.15", cfg: config{TracingConfigBackend: "zipkin", TracingConfigZipkinEndpoint: "http://old/api/v2/spans"},
			obs: TracingConfig{Protocol: "zipkin", Endpoint: "http://new/api/v2/spans", SamplingRate: 0.5}, wantExporter: "zipkin", wantEndpoint: "http://new/api/v2/spans", wantSource: "TraceIDRatioBased{0.5}"},
		{name: "newest zipkin without endpoint", obs: TracingConfig{Protocol: "zipkin"}, wantWarn: "tracing.endpoint is empty; tracing is off"},
		{name: "newest stdout: no warning about unused 1.15 settings", cfg: config{TracingConfigBackend: "zipkin"}, obs: TracingConfig{Protocol: "stdout"},
			wantExporter: "stdout", wantSource: "OBSERVABILITY_CONFIG"},
		{name: "newest unknown protocol", obs: TracingConfig{Protocol: "jaeger"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			got, err := resolveTracing(&tc.cfg, tc.obs, func(k string) string { return tc.env[k] }, zap.New(core).Sugar())
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got.exporter != tc.wantExporter || got.endpoint != tc.wantEndpoint || !strings.Contains(got.source, tc.wantSource) {
				t.Errorf("got exporter %q endpoint %q source %q; want %q %q %q", got.exporter, got.endpoint, got.source, tc.wantExporter, tc.wantEndpoint, tc.wantSource)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") && tc.env != nil {
					t.Errorf("error %v does not name the variable", err)
				}
				return
			}
			if (got.exporter != "") != (got.sampler != nil) {
				t.Errorf("exporter %q with sampler %v", got.exporter, got.sampler != nil)
			}
			var warnings []string
			for _, e := range logs.All() {
				warnings = append(warnings, e.Message)
			}
			for _, e := range logs.All() {
				for _, f := range e.Context {
					if f.Interface != nil {
						warnings[len(warnings)-1] += fmt.Sprint(" ", f.Interface)
					}
				}
			}
			if tc.wantWarn == "" && len(warnings) != 0 || tc.wantWarn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantWarn)) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.wantWarn)
			}
		})
	}
}

// syncBuffer stands in for stdout.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSuffix(b.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// captureStdout replaces stdout for the test.
func captureStdout(t *testing.T) *syncBuffer {
	b := &syncBuffer{}
	old := stdout
	stdout = b
	t.Cleanup(func() { stdout = old })
	return b
}

// logTo sends the queue-proxy log to a file the test reads with readLog.
func logTo(t *testing.T, env map[string]string) string {
	path := filepath.Join(t.TempDir(), "qp.log")
	env["SERVING_LOGGING_CONFIG"] = `{"level":"debug","encoding":"json","outputPaths":["` + path + `"],"encoderConfig":{"messageKey":"message","levelKey":"severity"}}`
	return path
}

func readLog(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// traceHeaders is what the user container received of one request.
type traceHeaders struct {
	path                                    string
	traceparent, b3Trace, b3Span, b3Sampled string
}

// traceApp is a user container that reports the trace headers of every
// request on a channel and answers "ok".
func traceApp(t *testing.T) (*httptest.Server, chan traceHeaders) {
	got := make(chan traceHeaders, 100)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- traceHeaders{r.URL.Path, r.Header.Get("traceparent"), r.Header.Get("X-B3-TraceId"), r.Header.Get("X-B3-SpanId"), r.Header.Get("X-B3-Sampled")}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	return app, got
}

// zipkinCollector is an httptest Zipkin collector that keeps every span it
// receives.
type zipkinCollector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []model.SpanModel
	errs  []error
}

func newZipkinCollector(t *testing.T) *zipkinCollector {
	c := &zipkinCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var spans []model.SpanModel
		err := json.NewDecoder(r.Body).Decode(&spans)
		c.mu.Lock()
		c.spans = append(c.spans, spans...)
		if err != nil {
			c.errs = append(c.errs, err)
		}
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *zipkinCollector) received(t *testing.T) []model.SpanModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) != 0 {
		t.Errorf("collector could not decode posts: %v", c.errs)
	}
	return append([]model.SpanModel(nil), c.spans...)
}

// stop shuts queue-proxy down (SIGTERM and drain), which flushes the traces.
func (q *qp) stop(t *testing.T) {
	q.cancel()
	if err := q.stepUntilDone(t); err != nil {
		t.Fatalf("run = %v", err)
	}
}

// TestRunTracingZipkin drives queue-proxy with 1.15 Zipkin tracing and a
// breaker, and checks what a Zipkin collector receives and what the user
// container sees (CONTRACT.md §5.5, v0.42.2): the server span (named by the
// path) → queue_proxy → {queue_wait, client span} per request, trace
// continuity from an incoming traceparent and from incoming B3 headers, both
// header sets upstream, and a root "probe" span for each health probe. 1.15
// has no probe filter in its server span, which sits inside the drainer: a
// request with K-Network-Probe other than "probe" is traced like any other,
// one with K-Kubelet-Probe gets server and client spans (the queue layer
// passes it straight through).
func TestRunTracingZipkin(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last
	collector := newZipkinCollector(t)
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{
		"OBSERVABILITY_CONFIG": "", "CONTAINER_CONCURRENCY": "2",
		"TRACING_CONFIG_BACKEND": "zipkin", "TRACING_CONFIG_ZIPKIN_ENDPOINT": collector.URL + "/api/v2/spans",
		"TRACING_CONFIG_SAMPLE_RATE": "1",
	})
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	_, userPort, _ := net.SplitHostPort(app.Listener.Addr().String())

	const (
		incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		incomingSpan  = "00f067aa0ba902b7"
		b3Trace       = "a3ce929d0e0e4736" // 64-bit
		b3Span        = "0102030405060708"
	)
	requests := []struct {
		path      string
		header    map[string]string
		wantTrace string // "" = a new trace
		wantSpans int    // 4: server, queue_proxy, queue_wait, client
	}{
		{"/w3c", map[string]string{"traceparent": "00-" + incomingTrace + "-" + incomingSpan + "-01"}, incomingTrace, 4},
		{"/b3", map[string]string{"X-B3-TraceId": b3Trace, "X-B3-SpanId": b3Span, "X-B3-Sampled": "1"}, "0000000000000000" + b3Trace, 4},
		{"/new", nil, "", 4},
		{"/k-network-probe", map[string]string{"K-Network-Probe": "queue"}, "", 4},
		{"/k-kubelet-probe", map[string]string{"K-Kubelet-Probe": "queue"}, "", 2},
	}
	seen := map[string]traceHeaders{}
	for _, r := range requests {
		req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, r.path), nil)
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		if resp := do(t, client, req); resp.code != 200 || resp.body != "ok" {
			t.Fatalf("%s: %d %q", r.path, resp.code, resp.body)
		}
		h := <-upstream
		seen[h.path] = h
	}
	// A health probe, answered by queue-proxy itself: one root span "probe".
	if r := get(t, q.url(serverMain, "/"), map[string]string{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"}); r.code != 200 {
		t.Fatalf("probe: %d %q", r.code, r.body)
	}
	q.stop(t)

	spans := collector.received(t)
	spans = checkStartupTraceZipkin(t, spans)
	byTrace := map[string][]model.SpanModel{}
	var probes []model.SpanModel
	for _, s := range spans {
		if s.Name == "probe" {
			probes = append(probes, s)
			continue
		}
		byTrace[traceKey(s.TraceID)] = append(byTrace[traceKey(s.TraceID)], s)
		if s.LocalEndpoint == nil || s.LocalEndpoint.ServiceName != "hello-00001-deployment-abc" || s.LocalEndpoint.IPv4.String() != "10.0.0.7" {
			t.Errorf("span %q local endpoint %+v, want the pod hello-00001-deployment-abc at 10.0.0.7", s.Name, s.LocalEndpoint)
		}
	}
	if len(probes) != 1 || probes[0].ParentID != nil || probes[0].Kind != "" || len(probes[0].Annotations) != 0 {
		t.Errorf("probe spans %+v, want one root span without annotations", probes)
	}
	if len(spans) != 19 || len(byTrace) != 5 {
		t.Errorf("collector got %d spans in %d request traces, want 18 in 5 and a probe span", len(spans), len(byTrace))
	}
	for _, r := range requests {
		h := seen[r.path]
		// The user container gets both formats, naming the same span.
		parts := strings.Split(h.traceparent, "-")
		if len(parts) != 4 || parts[0] != "00" || parts[3] != "01" || h.b3Trace != parts[1] || h.b3Span != parts[2] || h.b3Sampled != "1" {
			t.Errorf("%s: upstream trace headers %+v are not one sampled context in both formats", r.path, h)
			continue
		}
		traceID := parts[1]
		if r.wantTrace != "" && traceID != r.wantTrace {
			t.Errorf("%s: upstream trace %s, want the incoming %s", r.path, traceID, r.wantTrace)
		}
		if r.wantSpans == 4 {
			checkRequestSpans(t, r.path, byTrace[traceID], parts[2], userPort, r.header)
		} else if got := byTrace[traceID]; len(got) != r.wantSpans {
			t.Errorf("%s: spans %+v, want %d", r.path, got, r.wantSpans)
		}
	}
}

// traceKey is a Zipkin trace id as 32 hex digits (model.TraceID.String
// drops a zero high half).
func traceKey(id model.TraceID) string {
	return fmt.Sprintf("%016x%016x", id.High, id.Low)
}

// checkRequestSpans checks one request's trace: server span (remote child of
// the incoming span, if any) → queue_proxy → {queue_wait, client span}, the
// client span being the one named upstream.
func checkRequestSpans(t *testing.T, path string, spans []model.SpanModel, upstreamSpan, userPort string, incoming map[string]string) {
	t.Helper()
	byName := map[string]model.SpanModel{}
	for _, s := range spans {
		key := s.Name
		if s.Kind == model.Client {
			key = "client"
		}
		byName[key] = s
	}
	server, proxy, wait, client := byName[path], byName["queue_proxy"], byName["queue_wait"], byName["client"]
	if len(spans) != 4 || server.Kind != model.Server || proxy.Kind != "" || wait.Kind != "" || client.Name != path {
		t.Fatalf("%s: spans %+v; want server %q, queue_proxy, queue_wait and a client span", path, spans, path)
	}
	parent := func(s model.SpanModel) string {
		if s.ParentID == nil {
			return ""
		}
		return s.ParentID.String()
	}
	wantServerParent := incoming["X-B3-SpanId"]
	if tp := incoming["traceparent"]; tp != "" {
		wantServerParent = strings.Split(tp, "-")[2]
	}
	for _, c := range []struct {
		name      string
		got, want string
	}{
		{"server's parent", parent(server), wantServerParent},
		{"queue_proxy's parent", parent(proxy), server.ID.String()},
		{"queue_wait's parent", parent(wait), proxy.ID.String()},
		{"client's parent", parent(client), proxy.ID.String()},
		{"the span sent upstream", upstreamSpan, client.ID.String()},
		{"client http.url", client.Tags["http.url"], "http://127.0.0.1:" + userPort + path},
		{"server http.status_code", server.Tags["http.status_code"], "200"},
		{"server status description", server.Tags["opencensus.status_description"], "OK"},
		{"server http.url", server.Tags["http.url"], path},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s = %q, want %q", path, c.name, c.got, c.want)
		}
	}
	if !(server.Timestamp.Compare(proxy.Timestamp) <= 0 && proxy.Timestamp.Compare(wait.Timestamp) <= 0 &&
		!wait.Timestamp.Add(wait.Duration).After(client.Timestamp)) {
		t.Errorf("%s: span times out of order: server %v, queue_proxy %v, queue_wait %v+%v, client %v",
			path, server.Timestamp, proxy.Timestamp, wait.Timestamp, wait.Duration, client.Timestamp)
	}
}

// TestRunTracingSampleRateZero: with rate 0 nothing is exported, but the
// user container still gets an unsampled context in both formats, and an
// incoming sampled traceparent is still followed (the 1.15 sampler).
func TestRunTracingSampleRateZero(t *testing.T) {
	collector := newZipkinCollector(t)
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{
		"OBSERVABILITY_CONFIG": "", "TRACING_CONFIG_BACKEND": "zipkin",
		"TRACING_CONFIG_ZIPKIN_ENDPOINT": collector.URL + "/api/v2/spans", "TRACING_CONFIG_SAMPLE_RATE": "0",
	})
	get(t, q.url(serverMain, "/unsampled"), nil)
	h := <-upstream
	if !strings.HasSuffix(h.traceparent, "-00") || h.b3Sampled != "0" || !strings.Contains(h.traceparent, h.b3Trace) {
		t.Errorf("upstream headers %+v, want an unsampled context in both formats", h)
	}
	get(t, q.url(serverMain, "/sampled"), map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	<-upstream
	q.stop(t)
	spans := collector.received(t)
	if len(spans) != 3 { // server, queue_proxy, client (no breaker)
		t.Fatalf("collector got %d spans, want the 3 of the request with a sampled parent: %+v", len(spans), spans)
	}
	for _, s := range spans {
		if s.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %q of trace %s exported", s.Name, s.TraceID)
		}
	}
}

// TestRunTracingOff: with tracing.protocol none no trace headers are
// added and incoming ones pass through unchanged (B3 included).
func TestRunTracingOff(t *testing.T) {
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"none"}}`})
	get(t, q.url(serverMain, "/"), nil)
	if h := <-upstream; h.traceparent != "" || h.b3Trace != "" {
		t.Errorf("tracing off, but upstream got %+v", h)
	}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	get(t, q.url(serverMain, "/"), map[string]string{"traceparent": tp, "X-B3-TraceId": "a3ce929d0e0e4736"})
	if h := <-upstream; h.traceparent != tp || h.b3Trace != "a3ce929d0e0e4736" {
		t.Errorf("tracing off: upstream got %+v, want the incoming headers unchanged", h)
	}
	q.stop(t)
}

// TestRunTracingNewestRateZero: OTLP tracing with samplingRate 0 samples
// nothing, not even under a sampled parent (Knative's NeverSample), but the
// user container still gets a W3C context: the incoming trace, a new span
// id, flags 00; B3 is neither read nor written.
func TestRunTracingNewestRateZero(t *testing.T) {
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:9"}}`})
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	get(t, q.url(serverMain, "/"), map[string]string{"traceparent": tp, "X-B3-TraceId": "a3ce929d0e0e4736", "X-B3-SpanId": "0102030405060708"})
	h := <-upstream
	parts := strings.Split(h.traceparent, "-")
	if len(parts) != 4 || parts[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || parts[2] == "00f067aa0ba902b7" || parts[3] != "00" ||
		h.b3Trace != "a3ce929d0e0e4736" || h.b3Span != "0102030405060708" {
		t.Errorf("upstream got %+v, want the incoming trace unsampled under a new span, B3 as received", h)
	}
	q.stop(t)
}

func TestRunBadTracingProtocol(t *testing.T) {
	env := baseEnv()
	env["OBSERVABILITY_CONFIG"] = `{"tracing":{"protocol":"jaeger"}}`
	setEnv(t, env)
	err := run(t.Context(), runtimeDeps{clock: clocktest.NewFakeClock(time.Now())})
	if err == nil || !strings.Contains(err.Error(), `tracing.protocol "jaeger"`) {
		t.Fatalf("run = %v, want an error naming the protocol", err)
	}
}

// TestRunTracingStdout: the newest generation's stdout protocol writes
// every span as the OpenTelemetry SDK's stdout exporter line, next to
// request-log lines, and propagates W3C only.
func TestRunTracingStdout(t *testing.T) {
	out := captureStdout(t)
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{
		"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"stdout"},"enableRequestLog":true,"requestLogTemplate":"log {{.TraceID}}"}`,
	})
	get(t, q.url(serverMain, "/x"), nil)
	h := <-upstream
	q.stop(t)
	if h.b3Trace != "" {
		t.Errorf("B3 written upstream: %+v", h)
	}
	traceID := strings.Split(h.traceparent, "-")[1]
	var names []string
	var logged bool
	for _, l := range out.lines() {
		if strings.HasPrefix(l, "log ") {
			logged = l == "log "+traceID
			continue
		}
		var s struct {
			Name        string
			SpanContext struct{ TraceID string }
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.SpanContext.TraceID != traceID {
			t.Errorf("stdout line %q: %v, trace %v, want %s", l, err, s.SpanContext.TraceID, traceID)
		}
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "GET,HTTP GET,kn.queueproxy.proxy" {
		t.Errorf("spans on stdout %v", names)
	}
	if !logged {
		t.Errorf("no request log line with the trace id %s: %q", traceID, out.lines())
	}
}

// TestRunRequestLog checks request-log lines for known requests with both
// generations' settings (CONTRACT.md §3.11).
func TestRunRequestLog(t *testing.T) {
	const custom = "{{.Request.Method}} {{.Request.URL.Path}} {{.Response.Code}} {{.Response.Size}} {{.Revision.Name}} " +
		"{{.Revision.Namespace}} {{.Revision.Service}} {{.Revision.Configuration}} {{.Revision.PodName}} {{.Revision.PodIP}} [{{.TraceID}}]"
	rev := "hello-00001 default hello hello hello-00001-deployment-abc 10.0.0.7"
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	requests := []struct {
		path   string
		header map[string]string
	}{
		{"/plain", nil},
		{"/w3c", map[string]string{"traceparent": tp}},
		{"/b3", map[string]string{"X-B3-TraceId": "a3ce929d0e0e4736"}},
		{"/healthz", map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"}},
		{"/probe", map[string]string{"K-Network-Probe": "probe", "K-Network-Hash": "h"}},
	}
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{{
		name: "1.15 variables",
		env:  map[string]string{"OBSERVABILITY_CONFIG": "", "SERVING_ENABLE_REQUEST_LOG": "true", "SERVING_REQUEST_LOG_TEMPLATE": custom},
		want: []string{"GET /plain 200 3 " + rev + " []", "GET /w3c 200 3 " + rev + " [4bf92f3577b34da6a3ce929d0e0e4736]",
			"GET /b3 200 3 " + rev + " [a3ce929d0e0e4736]"},
	}, {
		name: "1.15 variables with probes",
		env: map[string]string{"OBSERVABILITY_CONFIG": "", "SERVING_ENABLE_REQUEST_LOG": "true", "SERVING_REQUEST_LOG_TEMPLATE": custom,
			"SERVING_ENABLE_PROBE_REQUEST_LOG": "true"},
		want: []string{"GET /plain 200 3 " + rev + " []", "GET /w3c 200 3 " + rev + " [4bf92f3577b34da6a3ce929d0e0e4736]",
			"GET /b3 200 3 " + rev + " [a3ce929d0e0e4736]", "GET /healthz 200 5 " + rev + " []", "GET /probe 200 0 " + rev + " []"},
	}, {
		name: "OBSERVABILITY_CONFIG",
		env:  map[string]string{"OBSERVABILITY_CONFIG": `{"enableRequestLog":true,"enableProbeRequestLog":true,"requestLogTemplate":"{{.Request.URL.Path}} {{.Response.Code}}"}`},
		want: []string{"/plain 200", "/w3c 200", "/b3 200", "/healthz 200", "/probe 200"},
	}, {
		name: "the 1.15 template wins over requestLogTemplate",
		env: map[string]string{"OBSERVABILITY_CONFIG": `{"enableRequestLog":true,"requestLogTemplate":"newest"}`,
			"SERVING_REQUEST_LOG_TEMPLATE": "{{.Request.URL.Path}}"},
		want: []string{"/plain", "/w3c", "/b3"},
	}, {
		name: "empty requestLogTemplate logs nothing",
		env:  map[string]string{"OBSERVABILITY_CONFIG": `{"enableRequestLog":true,"requestLogTemplate":""}`},
	}, {
		name: "off",
		env:  map[string]string{"SERVING_REQUEST_LOG_TEMPLATE": custom},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := captureStdout(t)
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
			t.Cleanup(app.Close)
			tc.env["SERVING_READINESS_PROBE"] = "" // always ready: probes answer 200 "queue"
			q := startQP(t, app, tc.env)
			for _, r := range requests {
				get(t, q.url(serverMain, r.path), r.header)
			}
			q.stop(t)
			if got := out.lines(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestRunRequestLogDefaultTemplate: with only enableRequestLog, the default
// template renders one JSON line per request, and with tracing on a request
// without trace headers logs the id of the trace queue-proxy started.
func TestRunRequestLogDefaultTemplate(t *testing.T) {
	out := captureStdout(t)
	app, upstream := traceApp(t)
	q := startQP(t, app, map[string]string{"OBSERVABILITY_CONFIG": `{"enableRequestLog":true,"tracing":{"protocol":"zipkin","endpoint":"http://127.0.0.1:1/api/v2/spans","samplingRate":0}}`})
	get(t, q.url(serverMain, "/foo?x=1"), map[string]string{"User-Agent": "curl/7.88.1"})
	h := <-upstream
	q.stop(t)
	lines := out.lines()
	if len(lines) != 1 {
		t.Fatalf("stdout %q, want one line", lines)
	}
	var got struct {
		HTTPRequest map[string]any `json:"httpRequest"`
		TraceID     string         `json:"traceId"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	r := got.HTTPRequest
	if r["requestMethod"] != "GET" || r["requestUrl"] != "/foo?x=1" || r["status"] != float64(200) || r["responseSize"] != "2" ||
		r["userAgent"] != "curl/7.88.1" || r["serverIp"] != "10.0.0.7" || r["protocol"] != "HTTP/1.1" || !strings.HasSuffix(r["latency"].(string), "s") {
		t.Errorf("line %q", lines[0])
	}
	if want := strings.Split(h.traceparent, "-")[1]; got.TraceID != want {
		t.Errorf("traceId %q, want the trace sent upstream %q", got.TraceID, want)
	}
}

func TestRunRequestLogBadTemplate(t *testing.T) {
	out := captureStdout(t)
	env := map[string]string{"OBSERVABILITY_CONFIG": "", "SERVING_ENABLE_REQUEST_LOG": "true", "SERVING_REQUEST_LOG_TEMPLATE": "{{.Request.Method"}
	logPath := logTo(t, env)
	app := echoApp(t)
	q := startQP(t, app, env)
	if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 {
		t.Errorf("request with a bad log template: %d", r.code)
	}
	q.stop(t)
	if lines := out.lines(); len(lines) != 0 {
		t.Errorf("stdout %q, want nothing", lines)
	}
	if log := readLog(t, logPath); !strings.Contains(log, "Error setting up request logger") || !strings.Contains(log, `"severity":"ERROR"`) {
		t.Errorf("no error for the bad template in the log:\n%s", log)
	}
}

// TestDefaultRequestLogTemplateIsJSON: sharedmain's DefaultRequestLogTemplate
// is the one pkg/http renders on its fast path (and fuzzes), and it stays
// one line of JSON for requests whose client-chosen fields try to break out
// of the JSON strings.
func TestDefaultRequestLogTemplateIsJSON(t *testing.T) {
	for _, tc := range []struct{ uri, ua, referer, traceparent string }{
		{"/it's", "O'Reilly", "'", ""},
		{`/a"b\c`, `"},"x":{"`, "</script>", `00-"},"injected":"-00f067aa0ba902b7-01`},
		{"/%0A", "\xff\xfe", "\u2028", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	} {
		var out bytes.Buffer
		h, err := pkghttp.NewRequestLogHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), &out, DefaultRequestLogTemplate,
			pkghttp.RequestLogTemplateInputGetterFromRevision(&pkghttp.RequestLogRevision{PodIP: "10.0.0.7"}), false)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RequestURI, req.RemoteAddr = tc.uri, "1.2.3.4:5'"
		req.Header.Set("User-Agent", tc.ua)
		req.Header.Set("Referer", tc.referer)
		req.Header.Set("traceparent", tc.traceparent)
		h.ServeHTTP(httptest.NewRecorder(), req)
		line := out.String()
		var v map[string]any
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || json.Unmarshal([]byte(line), &v) != nil {
			t.Errorf("not one line of JSON: %q", line)
		}
	}
}

// TestTracingHooksFlush: flush unregisters the exporter and closes it, so
// spans ended afterwards are not exported.
func TestTracingHooksFlush(t *testing.T) {
	exp := &countingExporter{}
	closed := false
	hooks := tracingHooksFor(pkgobs.GenerationNewest, trace.AlwaysSample(), nil, exp,
		func(context.Context) error { closed = true; return nil }, zap.NewNop().Sugar())
	_, s := trace.StartSpan(t.Context(), "before", trace.WithSampler(trace.AlwaysSample()))
	s.End()
	hooks.flush()
	_, s = trace.StartSpan(t.Context(), "after", trace.WithSampler(trace.AlwaysSample()))
	s.End()
	if exp.count() != 1 || !closed {
		t.Errorf("exported %d spans, closed %v; want 1 true", exp.count(), closed)
	}
}

type countingExporter struct {
	mu sync.Mutex
	n  int
}

func (e *countingExporter) ExportSpan(*trace.SpanData) { e.mu.Lock(); e.n++; e.mu.Unlock() }
func (e *countingExporter) count() int                 { e.mu.Lock(); defer e.mu.Unlock(); return e.n }

// TestRunTracingCollectorDown: a Zipkin collector that cannot be reached
// costs nothing but warnings: requests succeed, and the failed posts are
// logged at WARN, through zipkin-go's logger and at the final flush.
func TestRunTracingCollectorDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // a port nobody listens on
	env := map[string]string{"OBSERVABILITY_CONFIG": "", "TRACING_CONFIG_BACKEND": "zipkin",
		"TRACING_CONFIG_ZIPKIN_ENDPOINT": down.URL + "/api/v2/spans", "TRACING_CONFIG_DEBUG": "true"}
	logPath := logTo(t, env)
	app, upstream := traceApp(t)
	q := startQP(t, app, env)
	if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 {
		t.Fatalf("request: %d", r.code)
	}
	<-upstream
	q.stop(t)
	found := map[string]bool{}
	for _, line := range strings.Split(readLog(t, logPath), "\n") {
		for _, want := range []string{"failed to send the request", "Failed to flush traces"} {
			if strings.Contains(line, want) {
				found[want] = true
				if !strings.Contains(line, `"severity":"WARN"`) {
					t.Errorf("not at WARN: %s", line)
				}
			}
		}
	}
	if len(found) != 2 {
		t.Errorf("log lines found: %v; want zipkin-go's error and the flush warning", found)
	}
}

// checkStartupTraceZipkin checks the startup trace among spans (the run
// answered a probe, so it was exported) and returns the other spans: a
// root span named startupSpanName and one child per phase reached, in
// time order, each starting where the one before ended.
func checkStartupTraceZipkin(t *testing.T, spans []model.SpanModel) []model.SpanModel {
	t.Helper()
	var root *model.SpanModel
	for i := range spans {
		if spans[i].Name == startupSpanName {
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no %q span among %d", startupSpanName, len(spans))
	}
	if root.ParentID != nil {
		t.Errorf("startup root span has a parent %v", root.ParentID)
	}
	var rest, children []model.SpanModel
	for _, s := range spans {
		switch {
		case s.TraceID != root.TraceID:
			rest = append(rest, s)
		case s.ID != root.ID:
			children = append(children, s)
			if s.ParentID == nil || *s.ParentID != root.ID {
				t.Errorf("startup span %q: parent %v, want the root %v", s.Name, s.ParentID, root.ID)
			}
		}
	}
	slices.SortFunc(children, func(a, b model.SpanModel) int { return a.Timestamp.Compare(b.Timestamp) })
	var names []string
	for _, c := range children {
		names = append(names, c.Name)
	}
	// The requests came before the probe; both phases happened by then.
	want := []string{"parse environment", "open listeners", "wait for the first request", "wait for the first probe", "wait for the user container", "answer the first probe"}
	if !slices.Equal(names, want) {
		t.Errorf("startup spans %q, want %q", names, want)
	}
	end := root.Timestamp.Add(root.Duration)
	if len(children) > 0 {
		// Zipkin carries microseconds: allow their rounding.
		if last := children[len(children)-1]; last.Timestamp.Add(last.Duration).Sub(end).Abs() > 2*time.Microsecond {
			t.Errorf("startup root ends at %v, its last phase at %v", end, last.Timestamp.Add(last.Duration))
		}
	}
	return rest
}
