package observability

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opencensus.io/trace"
)

// spanRecorder collects exported spans. OpenCensus exporters are global,
// so tests that use one do not run in parallel.
type spanRecorder struct {
	mu    sync.Mutex
	spans []*trace.SpanData
}

func (r *spanRecorder) ExportSpan(sd *trace.SpanData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, sd)
}

func (r *spanRecorder) take() []*trace.SpanData {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.spans
	r.spans = nil
	return s
}

func recordSpans(t *testing.T) *spanRecorder {
	r := &spanRecorder{}
	trace.RegisterExporter(r)
	t.Cleanup(func() { trace.UnregisterExporter(r) })
	return r
}

// serverSpanWant is what each generation's server span looks like for the
// request of TestServerSpanHandler (GET http://svc.example/api/items?x=1,
// User-Agent curl/8).
var serverSpanWant = map[string]struct {
	name  string
	attrs map[string]any // without the status code
	code  string         // the status-code attribute's key
	b3    bool           // B3 is read
	probe bool           // probes are traced (1.15: the drainer answers them first)
}{
	"1.15": {name: "/api/items", code: "http.status_code", b3: true, probe: true, attrs: map[string]any{
		"http.method": "GET", "http.path": "/api/items", "http.url": "http://svc.example/api/items?x=1", "http.host": "svc.example", "http.user_agent": "curl/8"}},
	"newest": {name: "GET", code: "http.response.status_code", attrs: map[string]any{
		"http.request.method": "GET", "url.path": "/api/items", "url.scheme": "http", "server.address": "svc.example",
		"user_agent.original": "curl/8", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
		"client.address": "192.0.2.1", "network.protocol.version": "1.1", "kn.route.tag": "tag",
		"http.response.body.size": int64(4)}},
}

func TestServerSpanHandler(t *testing.T) {
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		t.Run(gen.Name, func(t *testing.T) { testServerSpanHandler(t, gen) })
	}
}

func testServerSpanHandler(t *testing.T, gen *Generation) {
	want := serverSpanWant[gen.Name]
	traceparent := "00-" + tidHex + "-" + sidHex + "-01"
	cases := []struct {
		name      string
		header    map[string]string
		sampler   trace.Sampler
		code      int // 0: the handler writes no status
		wantSpan  bool
		wantTrace trace.TraceID // zero: a new trace
		wantCode  int64
		wantError bool
	}{
		{name: "new trace", sampler: trace.AlwaysSample(), code: 201, wantSpan: true, wantCode: 201},
		{name: "no status written is 200", sampler: trace.AlwaysSample(), wantSpan: true, wantCode: 200},
		{name: "traceparent is the remote parent", header: map[string]string{"traceparent": traceparent}, sampler: trace.AlwaysSample(),
			code: 200, wantSpan: true, wantTrace: tid, wantCode: 200},
		{name: "B3 is the remote parent", header: map[string]string{"X-B3-TraceId": tidHex, "X-B3-SpanId": sidHex, "X-B3-Sampled": "1"},
			sampler: trace.AlwaysSample(), code: 200, wantSpan: true, wantTrace: tid, wantCode: 200},
		{name: "a sampled parent overrides rate 0 (1.15 sampler)", header: map[string]string{"traceparent": traceparent},
			sampler: LegacySampler(0, false), code: 200, wantSpan: true, wantTrace: tid, wantCode: 200},
		{name: "5xx is an error", sampler: trace.AlwaysSample(), code: 503, wantSpan: true, wantCode: 503, wantError: true},
		{name: "4xx is not a server error", sampler: trace.AlwaysSample(), code: 404, wantSpan: true, wantCode: 404},
		{name: "unsampled", sampler: trace.NeverSample(), code: 200},
		{name: "kubelet probe", header: map[string]string{"User-Agent": "kube-probe/1.31"}, sampler: trace.AlwaysSample(), code: 200},
		{name: "K-Kubelet-Probe", header: map[string]string{"K-Kubelet-Probe": "queue"}, sampler: trace.AlwaysSample(), code: 200},
		{name: "K-Network-Probe", header: map[string]string{"K-Network-Probe": "queue"}, sampler: trace.AlwaysSample(), code: 200},
	}
	for _, tc := range cases {
		isProbe := strings.Contains(tc.name, "robe")
		if isProbe && want.probe {
			continue
		}
		if strings.HasPrefix(tc.name, "B3") && !want.b3 {
			tc.wantTrace = trace.TraceID{} // B3 is not read: a new trace
		}
		t.Run(tc.name, func(t *testing.T) {
			rec := recordSpans(t)
			var inner trace.SpanContext
			var innerHasSpan, innerRecording, sameWriter bool
			w := httptest.NewRecorder()
			h := ServerSpanHandler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				span := trace.FromContext(r.Context())
				innerHasSpan = span != nil
				if span != nil {
					inner, innerRecording = span.SpanContext(), span.IsRecordingEvents()
				}
				sameWriter = rw == http.ResponseWriter(w)
				if tc.code != 0 {
					rw.WriteHeader(tc.code)
				}
				io.WriteString(rw, "body")
			}), tc.sampler, gen.Spans, func(*http.Request) string { return "tag" })
			req := httptest.NewRequest(http.MethodGet, "http://svc.example/api/items?x=1", nil)
			req.Header.Set("User-Agent", "curl/8")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(w, req)

			if w.Body.String() != "body" {
				t.Errorf("response body %q", w.Body.String())
			}
			spans := rec.take()
			if isProbe && innerHasSpan {
				t.Error("a probe got a span")
			}
			if !tc.wantSpan {
				if len(spans) != 0 {
					t.Fatalf("exported %d spans, want none", len(spans))
				}
				if !isProbe && (!innerHasSpan || innerRecording || !sameWriter) {
					t.Errorf("unsampled: span in context %v, recording %v, writer passed through %v; want true, false, true", innerHasSpan, innerRecording, sameWriter)
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("exported %d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.SpanContext != inner {
				t.Errorf("exported span %v, the handler saw %v", s.SpanContext, inner)
			}
			if s.Name != want.name || s.SpanKind != trace.SpanKindServer {
				t.Errorf("name %q kind %d, want %q server", s.Name, s.SpanKind, want.name)
			}
			if tc.wantTrace != (trace.TraceID{}) {
				if s.TraceID != tc.wantTrace || s.ParentSpanID != sid || !s.HasRemoteParent {
					t.Errorf("trace %v parent %v remote %v; want %v %v true", s.TraceID, s.ParentSpanID, s.HasRemoteParent, tc.wantTrace, sid)
				}
			} else if s.ParentSpanID != (trace.SpanID{}) || s.HasRemoteParent {
				t.Errorf("a new trace has parent %v (remote %v)", s.ParentSpanID, s.HasRemoteParent)
			}
			wantAttrs := maps.Clone(want.attrs)
			wantAttrs[want.code] = tc.wantCode
			if !maps.Equal(s.Attributes, wantAttrs) {
				t.Errorf("attributes\n%v\nwant\n%v", s.Attributes, wantAttrs)
			}
			wantError := tc.wantError || (want.probe && tc.wantCode >= 400) // ochttp: 4xx have error codes too
			if gotErr := s.Code != trace.StatusCodeOK; gotErr != wantError {
				t.Errorf("status %v, want error %v", s.Status, wantError)
			}
		})
	}
}

// TestServerSpanHandlerPanic: the panic goes on, and the span ends as each
// generation's instrumentation ends it: ochttp with the status written so
// far (200 when none); the OpenTelemetry SDK with an "exception" event, no
// response attributes and the status unset.
func TestServerSpanHandlerPanic(t *testing.T) {
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		t.Run(gen.Name, func(t *testing.T) {
			rec := recordSpans(t)
			h := ServerSpanHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
				trace.AlwaysSample(), gen.Spans, nil)
			func() {
				defer func() {
					if p := recover(); p != http.ErrAbortHandler {
						t.Errorf("recovered %v, want the handler's panic to propagate", p)
					}
				}()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/p", nil))
			}()
			spans := rec.take()
			if len(spans) != 1 {
				t.Fatalf("%d spans after a panic, want 1", len(spans))
			}
			s := spans[0]
			if gen == Generation115 {
				if s.Attributes["http.status_code"] != int64(200) || s.Code != trace.StatusCodeOK || s.Message != "OK" {
					t.Errorf("1.15 span after a panic: %v %v, want status code 200, OK", s.Attributes, s.Status)
				}
				return
			}
			_, hasCode := s.Attributes["http.response.status_code"]
			if hasCode || s.Code != 0 || len(s.Annotations) != 1 || s.Annotations[0].Message != "exception" ||
				s.Annotations[0].Attributes["exception.type"] != "*errors.errorString" ||
				s.Annotations[0].Attributes["exception.message"] != http.ErrAbortHandler.Error() {
				t.Errorf("newest span after a panic: attributes %v status %v annotations %+v", s.Attributes, s.Status, s.Annotations)
			}
		})
	}
}

// fakeTransport records the request it was given and answers with code and
// body.
type fakeTransport struct {
	code int
	body io.ReadCloser
	err  error
	got  *http.Request
}

func (f *fakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.got = r
	if f.err != nil {
		return nil, f.err
	}
	return &http.Response{StatusCode: f.code, Body: f.body, Request: r}, nil
}

// closeRecorder is a response body that records Close.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestSpanTransport(t *testing.T) {
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		t.Run(gen.Name, func(t *testing.T) { testSpanTransport(t, gen) })
	}
}

func testSpanTransport(t *testing.T, gen *Generation) {
	newest := gen == GenerationNewest
	cases := []struct {
		name       string
		parent     trace.Sampler // nil: no span in the context
		code       int
		err        error
		wantSpan   bool
		wantHeader bool
		wantError  bool
		endAtOnce  bool // the span ends in RoundTrip, not with the body
	}{
		{name: "no span in the context", code: 200},
		{name: "unsampled parent", parent: trace.NeverSample(), code: 200, wantHeader: true},
		{name: "sampled", parent: trace.AlwaysSample(), code: 200, wantSpan: true, wantHeader: true},
		{name: "404 is an error", parent: trace.AlwaysSample(), code: 404, wantSpan: true, wantHeader: true, wantError: true},
		{name: "switching protocols ends at once", parent: trace.AlwaysSample(), code: 101, wantSpan: true, wantHeader: true, endAtOnce: true},
		{name: "transport error", parent: trace.AlwaysSample(), err: errors.New("dial tcp: refused"), wantSpan: true, wantHeader: true, wantError: true, endAtOnce: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := recordSpans(t)
			body := &closeRecorder{Reader: strings.NewReader("hello")}
			base := &fakeTransport{code: tc.code, body: body, err: tc.err}
			ctx := context.Background()
			var parent *trace.Span
			if tc.parent != nil {
				ctx, parent = trace.StartSpan(ctx, "parent", trace.WithSampler(tc.parent))
			}
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/items?x=1", nil).WithContext(ctx)
			req.Header.Set("X-Custom", "kept")
			resp, err := SpanTransport(base, gen.Spans, nil).RoundTrip(req)
			if !errors.Is(err, tc.err) {
				t.Fatalf("RoundTrip error %v, want %v", err, tc.err)
			}
			if _, ok := req.Header["Traceparent"]; ok {
				t.Error("the caller's request was modified")
			}
			sent := base.got
			if sent.Header.Get("X-Custom") != "kept" {
				t.Errorf("upstream headers %v lost X-Custom", sent.Header)
			}
			if !tc.wantHeader {
				if sent != req {
					t.Error("a request without a span was not passed through as it is")
				}
				if len(rec.take()) != 0 {
					t.Error("a span was exported")
				}
				return
			}

			if !tc.endAtOnce && len(rec.take()) != 0 {
				t.Fatal("the client span ended before the response body")
			}
			if resp != nil {
				if tc.endAtOnce && resp.Body != io.ReadCloser(body) {
					t.Error("the body of a 101 was wrapped")
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
				if !body.closed {
					t.Error("the upstream body was not closed")
				}
			}
			spans := rec.take()
			if parent != nil {
				parent.End()
				rec.take()
			}

			sc, ok := SpanContextFromHeader(sent.Header)
			if hasB3 := sent.Header.Get("X-B3-TraceId") != ""; !ok || hasB3 == newest {
				t.Fatalf("upstream headers %v: want traceparent, and B3 only in 1.15", sent.Header)
			}
			if sc.TraceID != parent.SpanContext().TraceID || sc.IsSampled() != tc.wantSpan {
				t.Errorf("upstream trace context %v, want trace %v sampled %v", sc, parent.SpanContext().TraceID, tc.wantSpan)
			}
			if !tc.wantSpan {
				if sc.SpanID == parent.SpanContext().SpanID || sc.SpanID == (trace.SpanID{}) || len(spans) != 0 {
					t.Errorf("unsampled: sent span %v (want a new one, not the parent's %v), exported %d spans", sc.SpanID, parent.SpanContext().SpanID, len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("exported %d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.SpanID != sc.SpanID || s.ParentSpanID != parent.SpanContext().SpanID || s.TraceID != sc.TraceID {
				t.Errorf("client span %v parent %v; upstream got %v; parent %v", s.SpanContext, s.ParentSpanID, sc, parent.SpanContext())
			}
			name, urlKey, codeKey := "/api/items", "http.url", "http.status_code"
			if newest {
				name, urlKey, codeKey = "HTTP GET", "url.full", "http.response.status_code"
			}
			if s.Name != name || s.SpanKind != trace.SpanKindClient || s.Attributes[urlKey] != "http://127.0.0.1:8080/api/items?x=1" {
				t.Errorf("client span %q kind %d attributes %v", s.Name, s.SpanKind, s.Attributes)
			}
			if tc.err == nil && s.Attributes[codeKey] != int64(tc.code) {
				t.Errorf("status code attribute %v, want %d", s.Attributes[codeKey], tc.code)
			}
			wantError := tc.wantError || (!newest && tc.code < 200) // ochttp: 1xx is UNKNOWN
			if gotErr := s.Code != trace.StatusCodeOK; gotErr != wantError {
				t.Errorf("status %v, want error %v", s.Status, wantError)
			}
		})
	}
}

func TestSamplers(t *testing.T) {
	sampledParent := trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1}
	unsampledParent := trace.SpanContext{TraceID: tid, SpanID: sid}
	low := trace.TraceID{0, 0, 0, 0, 0, 0, 0, 1}                                                                          // sampled by any rate > 0
	high := trace.TraceID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} // by none < 1
	cases := []struct {
		name    string
		sampler trace.Sampler
		parent  trace.SpanContext
		traceID trace.TraceID
		want    bool
	}{
		{"legacy debug", LegacySampler(0, true), unsampledParent, high, true},
		{"legacy rate 1", LegacySampler(1, false), trace.SpanContext{}, high, true},
		{"legacy rate 0", LegacySampler(0, false), trace.SpanContext{}, low, false},
		{"legacy rate 0, sampled parent", LegacySampler(0, false), sampledParent, high, true},
		{"legacy rate 0.5, unsampled parent, low id", LegacySampler(0.5, false), unsampledParent, low, true},
		{"legacy rate 0.5, high id", LegacySampler(0.5, false), trace.SpanContext{}, high, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.sampler(trace.SamplingParameters{ParentContext: tc.parent, TraceID: tc.traceID, HasRemoteParent: tc.parent != trace.SpanContext{}})
			if got.Sample != tc.want {
				t.Errorf("Sample = %v, want %v", got.Sample, tc.want)
			}
		})
	}
}

// TestSpanTransportRootSpan: with a sampler, a request without a span in
// its context (a probe the server span skipped) gets a root client span, as
// otelhttp's transport starts one: exported when sampled, its context sent
// upstream either way.
func TestSpanTransportRootSpan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sampler trace.Sampler
		want    int
	}{{"sampled", trace.AlwaysSample(), 1}, {"unsampled", trace.NeverSample(), 0}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := recordSpans(t)
			base := &fakeTransport{code: 200, body: &closeRecorder{Reader: strings.NewReader("ok")}}
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil)
			req.Header.Set("K-Kubelet-Probe", "queue")
			resp, err := SpanTransport(base, GenerationNewest.Spans, tc.sampler).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			sc, ok := TraceparentFromHeader(base.got.Header)
			spans := rec.take()
			if !ok || sc.IsSampled() != (tc.want == 1) || len(spans) != tc.want {
				t.Fatalf("upstream context %v (%v), %d spans; want sampled %v and %d spans", sc, ok, len(spans), tc.want == 1, tc.want)
			}
			if tc.want == 1 && (spans[0].Name != "HTTP GET" || spans[0].ParentSpanID != (trace.SpanID{}) || spans[0].SpanID != sc.SpanID) {
				t.Errorf("root client span %+v, upstream %v", spans[0], sc)
			}
		})
	}
}
