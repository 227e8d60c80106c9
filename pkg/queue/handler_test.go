package queue

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opencensus.io/trace"
	netstats "knative.dev/networking/pkg/http/stats"
)

// recordingHandler records the Host it saw and answers 200 "ok".
type recordingHandler struct {
	host, originalHostHeader string
	calls                    int
}

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	h.host, h.originalHostHeader = r.Host, r.Header.Get("K-Original-Host")
	w.Write([]byte("ok"))
}

func TestProxyHandler(t *testing.T) {
	cases := []struct {
		name                   string
		header                 map[string]string
		wantHost               string
		wantRequests, wantProx float64
	}{
		{name: "plain request", wantHost: "svc.example", wantRequests: 1},
		{name: "activator request", header: map[string]string{"K-Proxy-Request": "activator"}, wantHost: "svc.example", wantRequests: 1, wantProx: 1},
		{name: "other proxy value is not the activator", header: map[string]string{"K-Proxy-Request": "Activator"}, wantHost: "svc.example", wantRequests: 1},
		{name: "original host rewritten", header: map[string]string{"K-Original-Host": "orig.example"}, wantHost: "orig.example", wantRequests: 1},
		{name: "K-Kubelet-Probe bypasses stats and rewrite", header: map[string]string{"K-Kubelet-Probe": "queue", "K-Original-Host": "orig.example"}, wantHost: "svc.example"},
		{name: "kube-probe UA bypasses stats", header: map[string]string{"User-Agent": "kube-probe/1.31"}, wantHost: "svc.example"},
	}
	for _, tc := range cases {
		for _, cc := range []int{0, 2} {
			t.Run(tc.name+"/cc="+strconv.Itoa(cc), func(t *testing.T) {
				start := time.Now()
				stats := netstats.NewRequestStats(start)
				var breaker *Breaker
				if cc > 0 {
					breaker = NewBreaker(BreakerParams{QueueDepth: 10 * cc, MaxConcurrency: cc, InitialCapacity: cc})
				}
				next := &recordingHandler{}
				h := ProxyHandler(breaker, stats, false, next)

				req := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)

				if rec.Code != 200 || rec.Body.String() != "ok" || next.calls != 1 {
					t.Fatalf("got %d %q after %d calls", rec.Code, rec.Body.String(), next.calls)
				}
				if next.host != tc.wantHost {
					t.Errorf("upstream Host = %q, want %q", next.host, tc.wantHost)
				}
				if tc.wantHost == "orig.example" && next.originalHostHeader != "" {
					t.Errorf("K-Original-Host was not removed")
				}
				report := stats.Report(start.Add(time.Second))
				if report.RequestCount != tc.wantRequests || report.ProxiedRequestCount != tc.wantProx {
					t.Errorf("stats: requests %v proxied %v, want %v %v", report.RequestCount, report.ProxiedRequestCount, tc.wantRequests, tc.wantProx)
				}
				if breaker != nil && breaker.InFlight() != 0 {
					t.Errorf("breaker still holds %d requests", breaker.InFlight())
				}
			})
		}
	}
}

// TestProxyHandlerBreakerErrors covers the breaker rows of CONTRACT.md §3.12.
func TestProxyHandlerBreakerErrors(t *testing.T) {
	cases := []struct {
		name     string
		ctx      func() (context.Context, context.CancelFunc)
		wantCode int
		wantBody string
	}{
		{name: "queue full", ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantCode: 503, wantBody: "pending request queue full\n"},
		{name: "deadline while queued", ctx: func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Unix(1, 0))
		}, wantCode: 503, wantBody: "context deadline exceeded\n"},
		{name: "cancelled while queued", ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, wantCode: 500, wantBody: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One running slot, taken; the queue has room for one unless the
			// case wants it full.
			breaker := NewBreaker(BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: 1})
			if err := breaker.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer breaker.Release()
			if tc.name == "queue full" {
				queueWaiter(t, breaker)
			}
			stats := netstats.NewRequestStats(time.Now())
			next := &recordingHandler{}
			ctx, cancel := tc.ctx()
			defer cancel()
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			ProxyHandler(breaker, stats, false, next).ServeHTTP(rec, req)

			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody || next.calls != 0 {
				t.Fatalf("got %d %q (next called %d times), want %d %q", rec.Code, rec.Body.String(), next.calls, tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 503 {
				if ct, nosniff := rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"); ct != "text/plain; charset=utf-8" || nosniff != "nosniff" {
					t.Errorf("headers: Content-Type %q, X-Content-Type-Options %q", ct, nosniff)
				}
			}
		})
	}
}

func BenchmarkProxyHandler(b *testing.B) {
	for _, cc := range []int{0, 10} {
		b.Run("cc="+strconv.Itoa(cc), func(b *testing.B) {
			var breaker *Breaker
			if cc > 0 {
				breaker = NewBreaker(BreakerParams{QueueDepth: 10 * cc, MaxConcurrency: cc, InitialCapacity: cc})
			}
			h := ProxyHandler(breaker, netstats.NewRequestStats(time.Now()), false, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// spanRecorder collects the spans OpenCensus exports (a global registry:
// tests using it do not run in parallel).
type spanRecorder struct {
	mu    sync.Mutex
	spans []*trace.SpanData
}

func (r *spanRecorder) ExportSpan(sd *trace.SpanData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, sd)
}

func (r *spanRecorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []string
	for _, s := range r.spans {
		n = append(n, s.Name)
	}
	return n
}

func (r *spanRecorder) byName(name string) *trace.SpanData {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func TestProxyHandlerSpans(t *testing.T) {
	cases := []struct {
		name      string
		tracing   bool
		cc        int
		parent    trace.Sampler // nil: no span in the request context
		queueFull bool
		want      []string // exported spans, in order of ending (the server span excluded)
	}{
		{name: "tracing off", tracing: false, cc: 2, parent: trace.AlwaysSample()},
		{name: "no breaker", tracing: true, cc: 0, parent: trace.AlwaysSample(), want: []string{"queue_proxy"}},
		{name: "breaker", tracing: true, cc: 2, parent: trace.AlwaysSample(), want: []string{"queue_wait", "queue_proxy"}},
		{name: "breaker rejects", tracing: true, cc: 1, parent: trace.AlwaysSample(), queueFull: true, want: []string{"queue_wait", "queue_proxy"}},
		{name: "unsampled", tracing: true, cc: 2, parent: trace.NeverSample()},
		{name: "no span (probe)", tracing: true, cc: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &spanRecorder{}
			trace.RegisterExporter(rec)
			defer trace.UnregisterExporter(rec)

			var breaker *Breaker
			if tc.cc > 0 {
				breaker = NewBreaker(BreakerParams{QueueDepth: 1, MaxConcurrency: tc.cc, InitialCapacity: tc.cc})
			}
			if tc.queueFull {
				fillBreaker(t, breaker) // the next is rejected
			}
			ctx := context.Background()
			var server *trace.Span
			if tc.parent != nil {
				ctx, server = trace.StartSpan(ctx, "server", trace.WithSampler(tc.parent))
			}
			var seen *trace.Span
			var endedBeforeNext []string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = trace.FromContext(r.Context())
				endedBeforeNext = rec.names()
			})
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			ProxyHandler(breaker, netstats.NewRequestStats(time.Now()), tc.tracing, next).ServeHTTP(httptest.NewRecorder(), req)

			if got := rec.names(); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("exported %v, want %v", got, tc.want)
			}
			if len(tc.want) == 0 {
				if seen != server {
					t.Errorf("next saw span %v, want the request's own %v", seen, server)
				}
				return
			}
			proxy := rec.byName("queue_proxy")
			if proxy.ParentSpanID != server.SpanContext().SpanID || proxy.TraceID != server.SpanContext().TraceID {
				t.Errorf("queue_proxy %v has parent %v, want a child of %v", proxy.SpanContext, proxy.ParentSpanID, server.SpanContext())
			}
			if wait := rec.byName("queue_wait"); wait != nil {
				if wait.ParentSpanID != proxy.SpanID {
					t.Errorf("queue_wait's parent %v, want queue_proxy %v", wait.ParentSpanID, proxy.SpanID)
				}
				if !tc.queueFull && strings.Join(endedBeforeNext, ",") != "queue_wait" {
					t.Errorf("spans ended when next ran: %v, want queue_wait (it ends at admission)", endedBeforeNext)
				}
			}
			if !tc.queueFull && (seen == nil || seen.SpanContext() != proxy.SpanContext) {
				t.Errorf("next saw span %v, want queue_proxy %v (the upstream call's parent)", seen, proxy.SpanContext)
			}
		})
	}
}

type discardExporter struct{}

func (discardExporter) ExportSpan(*trace.SpanData) {}

func BenchmarkProxyHandlerTracing(b *testing.B) {
	trace.RegisterExporter(discardExporter{})
	defer trace.UnregisterExporter(discardExporter{})
	for _, tc := range []struct {
		name    string
		tracing bool
		sampler trace.Sampler
	}{{"off", false, nil}, {"on-unsampled", true, trace.NeverSample()}, {"on-sampled", true, trace.AlwaysSample()}} {
		b.Run(tc.name, func(b *testing.B) {
			breaker := NewBreaker(BreakerParams{QueueDepth: 100, MaxConcurrency: 10, InitialCapacity: 10})
			h := ProxyHandler(breaker, netstats.NewRequestStats(time.Now()), tc.tracing, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			ctx := context.Background()
			if tc.sampler != nil {
				var span *trace.Span
				ctx, span = trace.StartSpan(ctx, "server", trace.WithSampler(tc.sampler))
				defer span.End()
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}

// fillBreaker takes b's one running slot and queues one waiter (b must be
// CC=1 with a queue of 1), until the test ends: the next request is
// rejected.
func fillBreaker(t *testing.T, b *Breaker) {
	t.Helper()
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Release)
	queueWaiter(t, b)
}

// queueWaiter queues one waiter in b, whose slots are taken, until the
// test ends.
func queueWaiter(t *testing.T, b *Breaker) {
	t.Helper()
	want := b.InFlight() + 1
	queued := make(chan error, 1)
	qctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-queued })
	go func() { queued <- b.Acquire(qctx) }()
	for b.InFlight() != want {
		time.Sleep(time.Millisecond) // until the waiter is queued
	}
}
