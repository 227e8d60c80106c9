package queue

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

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
				h := ProxyHandler(breaker, stats, next)

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
				queued := make(chan error, 1)
				qctx, cancel := context.WithCancel(context.Background())
				defer func() { cancel(); <-queued }()
				go func() { queued <- breaker.Acquire(qctx) }()
				for breaker.InFlight() != 2 {
					time.Sleep(time.Millisecond) // until the waiter is queued
				}
			}
			stats := netstats.NewRequestStats(time.Now())
			next := &recordingHandler{}
			ctx, cancel := tc.ctx()
			defer cancel()
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			ProxyHandler(breaker, stats, next).ServeHTTP(rec, req)

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
			h := ProxyHandler(breaker, netstats.NewRequestStats(time.Now()), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
