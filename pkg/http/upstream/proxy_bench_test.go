package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// pxDiscardWriter is a ResponseWriter that keeps nothing but the status,
// with a header map reused across requests, so that the benchmarks measure
// the proxies rather than the writer.
type pxDiscardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *pxDiscardWriter) Header() http.Header { return w.h }
func (w *pxDiscardWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
}
func (w *pxDiscardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	w.n += len(p)
	return len(p), nil
}
func (w *pxDiscardWriter) Flush() {}

// pxBenchRequest is a typical inbound GET, with a cancelable context as a
// server's.
func pxBenchRequest(ctx context.Context) *http.Request {
	r := httptest.NewRequestWithContext(ctx, "GET", "http://example.com/api/items?id=42", nil)
	r.RemoteAddr = "10.0.0.7:51234"
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("X-Request-Id", "0123456789abcdef")
	r.Header.Set("Knative-Serving-Revision", "rev-1")
	return r
}

// pxBench serves GETs through the lean Proxy or the ReverseProxy alone, in
// front of the same loopback backend (a 13-byte response with a length).
func pxBench(b *testing.B, lean, parallel bool) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":42,"x":1}`)
	}))
	defer backend.Close()
	f := pxStart(b, backend.Listener.Addr().String(), nil)
	var h http.Handler = f.proxy
	if !lean {
		h = f.proxy.Fallback
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	serve := func(w *pxDiscardWriter, r *http.Request) {
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, r)
		if w.code != 200 || w.n != 15 {
			b.Fatalf("got %d and %d bytes", w.code, w.n)
		}
	}
	b.ReportAllocs()
	if !parallel {
		w, r := &pxDiscardWriter{h: http.Header{}}, pxBenchRequest(ctx)
		b.ResetTimer()
		for b.Loop() {
			serve(w, r)
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w, r := &pxDiscardWriter{h: http.Header{}}, pxBenchRequest(ctx)
		for pb.Next() {
			serve(w, r)
		}
	})
}

func BenchmarkProxyLean(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { pxBench(b, true, false) })
	b.Run("parallel", func(b *testing.B) { pxBench(b, true, true) })
}

func BenchmarkProxyReverseProxy(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { pxBench(b, false, false) })
	b.Run("parallel", func(b *testing.B) { pxBench(b, false, true) })
}
