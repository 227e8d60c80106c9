package health

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"go.opencensus.io/trace"
)

// spanRecorder is a trace.Exporter keeping every span exported to it.
type spanRecorder struct {
	mu    sync.Mutex
	spans []*trace.SpanData
}

func (e *spanRecorder) ExportSpan(sd *trace.SpanData) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = append(e.spans, sd)
}

func (e *spanRecorder) exported() []*trace.SpanData {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.spans)
}

// recordSpans registers a spanRecorder with OpenCensus for the rest of the
// test, and unregisters it when the test ends.
func recordSpans(t *testing.T) *spanRecorder {
	t.Helper()
	e := &spanRecorder{}
	trace.RegisterExporter(e)
	t.Cleanup(func() { trace.UnregisterExporter(e) })
	return e
}

// probeRequest is a probe request with K-Network-Probe values vs (none if
// vs is nil).
func probeRequest(vs []string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("User-Agent", "kube-probe/1.30")
	if vs != nil {
		req.Header["K-Network-Probe"] = vs
	}
	return req
}

// checkSameAnswer fails t unless got is the answer ProbeHandler(prober)
// gives to req.
func checkSameAnswer(t *testing.T, got *httptest.ResponseRecorder, prober func() bool, req *http.Request) {
	t.Helper()
	want := httptest.NewRecorder()
	ProbeHandler(prober).ServeHTTP(want, req)
	if got.Code != want.Code {
		t.Errorf("status = %d, want %d", got.Code, want.Code)
	}
	if got.Body.String() != want.Body.String() {
		t.Errorf("body = %q, want %q", got.Body.String(), want.Body.String())
	}
	gh, wh := got.Result().Header, want.Result().Header
	if !maps.EqualFunc(gh, wh, slices.Equal) {
		t.Errorf("header = %v, want %v", gh, wh)
	}
}

func TestTracedProbeHandler(t *testing.T) {
	ready := func() bool { return true }
	notReady := func() bool { return false }
	tests := []struct {
		name        string
		probeHeader []string
		prober      func() bool
		wantStatus  int
		wantBody    string
		wantFailure string // "" means no annotation
	}{{
		name:        "healthy",
		probeHeader: []string{"queue"},
		prober:      ready,
		wantStatus:  http.StatusOK,
		wantBody:    "queue",
	}, {
		name:        "not ready",
		probeHeader: []string{"queue"},
		prober:      notReady,
		wantStatus:  http.StatusServiceUnavailable,
		wantBody:    "",
		wantFailure: "container not ready",
	}, {
		name:        "no prober",
		probeHeader: []string{"queue"},
		wantStatus:  http.StatusInternalServerError,
		wantBody:    "no probe\n",
		wantFailure: "no probe",
	}, {
		name:        "bad header",
		probeHeader: []string{"probe"},
		prober:      ready,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: probe\n",
		wantFailure: "unexpected probe header value: probe",
	}, {
		name:        "missing header",
		prober:      ready,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: \n",
		wantFailure: "unexpected probe header value: ",
	}}
	samplers := []struct {
		name    string
		sampler trace.Sampler
		sampled bool
	}{
		{name: "always", sampler: trace.AlwaysSample(), sampled: true},
		{name: "never", sampler: trace.NeverSample()},
		{name: "nil", sampler: nil},
	}
	for _, tc := range tests {
		for _, s := range samplers {
			t.Run(tc.name+"/"+s.name, func(t *testing.T) {
				exp := recordSpans(t)
				req := probeRequest(tc.probeHeader)
				rec := httptest.NewRecorder()
				TracedProbeHandler(tc.prober, "probe", s.sampler).ServeHTTP(rec, req)

				if rec.Code != tc.wantStatus {
					t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
				}
				if got := rec.Body.String(); got != tc.wantBody {
					t.Errorf("body = %q, want %q", got, tc.wantBody)
				}
				checkSameAnswer(t, rec, tc.prober, req)

				spans := exp.exported()
				if !s.sampled {
					if len(spans) != 0 {
						t.Fatalf("exported %d spans, want none", len(spans))
					}
					return
				}
				if len(spans) != 1 {
					t.Fatalf("exported %d spans, want 1", len(spans))
				}
				sd := spans[0]
				checkRootProbeSpan(t, sd)
				checkProbeAnnotation(t, sd, tc.wantFailure)
			})
		}
	}
}

// checkRootProbeSpan fails t unless sd is an ended, sampled root span named
// "probe" of unspecified kind.
func checkRootProbeSpan(t *testing.T, sd *trace.SpanData) {
	t.Helper()
	if sd.Name != "probe" {
		t.Errorf("span name = %q, want %q", sd.Name, "probe")
	}
	if sd.SpanKind != trace.SpanKindUnspecified {
		t.Errorf("span kind = %d, want unspecified", sd.SpanKind)
	}
	if !sd.IsSampled() {
		t.Error("span not sampled")
	}
	if sd.ParentSpanID != (trace.SpanID{}) || sd.HasRemoteParent {
		t.Errorf("parent = %v (remote %v), want a root span", sd.ParentSpanID, sd.HasRemoteParent)
	}
	if sd.StartTime.IsZero() || sd.EndTime.Before(sd.StartTime) {
		t.Errorf("span times = %v..%v, want an ended span", sd.StartTime, sd.EndTime)
	}
	if len(sd.Attributes) != 0 {
		t.Errorf("span attributes = %v, want none", sd.Attributes)
	}
}

// checkProbeAnnotation fails t unless sd's annotations are the one of
// failure, or none if failure is "".
func checkProbeAnnotation(t *testing.T, sd *trace.SpanData, failure string) {
	t.Helper()
	if failure == "" {
		if len(sd.Annotations) != 0 {
			t.Errorf("annotations = %v, want none", sd.Annotations)
		}
		return
	}
	if len(sd.Annotations) != 1 {
		t.Fatalf("annotations = %v, want 1", sd.Annotations)
	}
	a := sd.Annotations[0]
	if a.Message != "error" {
		t.Errorf("annotation message = %q, want %q", a.Message, "error")
	}
	want := map[string]any{"queueproxy.probe.error": failure}
	if !maps.Equal(a.Attributes, want) {
		t.Errorf("annotation attributes = %v, want %v", a.Attributes, want)
	}
	if a.Time.Before(sd.StartTime) || a.Time.After(sd.EndTime) {
		t.Errorf("annotation time %v outside the span %v..%v", a.Time, sd.StartTime, sd.EndTime)
	}
}

// TestTracedProbeHandlerParent checks that a span in the request context is
// the probe span's parent and decides its sampling, whatever the sampler.
func TestTracedProbeHandlerParent(t *testing.T) {
	tests := []struct {
		name          string
		parentSampled bool
		sampler       trace.Sampler
		wantSpan      bool
	}{
		{name: "sampled parent, always", parentSampled: true, sampler: trace.AlwaysSample(), wantSpan: true},
		{name: "sampled parent, never", parentSampled: true, sampler: trace.NeverSample(), wantSpan: true},
		{name: "sampled parent, nil", parentSampled: true, sampler: nil, wantSpan: true},
		{name: "unsampled parent, always", parentSampled: false, sampler: trace.AlwaysSample()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parentSampler := trace.NeverSample()
			if tc.parentSampled {
				parentSampler = trace.AlwaysSample()
			}
			ctx, parent := trace.StartSpan(context.Background(), "parent", trace.WithSampler(parentSampler))
			exp := recordSpans(t) // registered after the parent starts, before it ends
			defer parent.End()

			req := probeRequest([]string{"queue"}).WithContext(ctx)
			rec := httptest.NewRecorder()
			TracedProbeHandler(func() bool { return false }, "probe", tc.sampler).ServeHTTP(rec, req)

			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want %d", rec.Code, http.StatusServiceUnavailable)
			}
			spans := exp.exported()
			if !tc.wantSpan {
				if len(spans) != 0 {
					t.Fatalf("exported %d spans, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("exported %d spans, want 1 (the parent has not ended)", len(spans))
			}
			sd, pc := spans[0], parent.SpanContext()
			if sd.Name != "probe" {
				t.Errorf("span name = %q, want %q", sd.Name, "probe")
			}
			if sd.TraceID != pc.TraceID {
				t.Errorf("trace id = %v, want the parent's %v", sd.TraceID, pc.TraceID)
			}
			if sd.ParentSpanID != pc.SpanID {
				t.Errorf("parent span id = %v, want %v", sd.ParentSpanID, pc.SpanID)
			}
			if sd.SpanID == pc.SpanID {
				t.Error("span id is the parent's")
			}
			if sd.HasRemoteParent {
				t.Error("HasRemoteParent = true, want a local parent")
			}
			checkProbeAnnotation(t, sd, "container not ready")
		})
	}
}

func BenchmarkTracedProbeHandler(b *testing.B) {
	probeReq := probeRequest([]string{"queue"})
	benches := []struct {
		name    string
		ready   bool
		sampler trace.Sampler
	}{
		{name: "ready/unsampled", ready: true, sampler: trace.NeverSample()},
		{name: "ready/sampled", ready: true, sampler: trace.AlwaysSample()},
		{name: "not-ready/unsampled", ready: false, sampler: trace.NeverSample()},
		{name: "not-ready/sampled", ready: false, sampler: trace.AlwaysSample()},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			h := TracedProbeHandler(func() bool { return bb.ready }, "probe", bb.sampler)
			w := &discardWriter{h: make(http.Header, 4)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, probeReq)
			}
		})
	}
}
