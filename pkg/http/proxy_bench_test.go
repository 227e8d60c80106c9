package http

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"knative.dev/networking/pkg/http/proxy"
)

// discardWriter is a ResponseWriter whose cost is close to zero, so that
// the benchmark measures the proxy rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkReverseProxy proxies a small GET to a loopback backend with our
// header-pruning proxy and, for comparison in the same run, with a bare
// httputil.NewSingleHostReverseProxy using the same kind of transport, with
// and without our buffer pool.
func BenchmarkReverseProxy(b *testing.B) {
	backend, _ := startServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello, world")
	}), false)
	backendURL, err := url.Parse(backend.URL)
	if err != nil {
		b.Fatal(err)
	}

	pruning := NewHeaderPruningReverseProxy(backendURL.Host, NoHostOverride, RevisionHeaders, false)
	pruning.Transport = NewProxyTransport(0)
	pruning.ErrorHandler = ErrorHandler(nopLogger)

	bare := httputil.NewSingleHostReverseProxy(backendURL)
	bare.Transport = NewProxyTransport(0)

	// bare-pooled isolates the Director: same buffer pool as ours.
	barePooled := httputil.NewSingleHostReverseProxy(backendURL)
	barePooled.Transport = NewProxyTransport(0)
	barePooled.BufferPool = proxy.NewBufferPool()

	for _, bc := range []struct {
		name  string
		proxy http.Handler
	}{
		{name: "pruning", proxy: pruning},
		{name: "bare", proxy: bare},
		{name: "bare-pooled", proxy: barePooled},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/items?id=42", nil)
			req.Header.Set("User-Agent", "bench/1.0")
			req.Header.Set("Accept", "*/*")
			req.Header.Set("X-Forwarded-For", "10.0.0.1")
			req.Header.Set("Knative-Serving-Revision", "rev-00001")
			req.Header.Set("Knative-Serving-Namespace", "default")
			w := &discardWriter{h: make(http.Header)}

			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = 0
				bc.proxy.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status = %d", w.code)
				}
			}
		})
	}
}
