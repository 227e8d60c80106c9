package sharedmain

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// benchChain is the main-port chain with every default layer, as run()
// builds it for cc, around inner.
func benchChain(cc int, inner http.Handler) http.Handler {
	cfg := &config{ContainerConcurrency: cc, RevisionTimeoutSeconds: 300, DrainQuietPeriod: 30 * time.Second}
	logger := zap.NewNop().Sugar()
	return buildChain(chainParams{
		cfg: cfg, logger: logger, breaker: newBreaker(cc, logger), stats: netstats.NewRequestStats(time.Now()),
		prober: func() bool { return true }, inner: inner, clock: clock.RealClock{},
		tracing: tracingHooks{flush: func() {}}, metrics: metricsHooks{flush: func() {}},
	})
}

// BenchmarkChain measures the whole in-process chain. "layers" isolates our
// layers (the innermost handler writes 2 bytes); "proxy" adds the real
// reverse proxy to a loopback app, next to a bare httputil.ReverseProxy to
// the same app in the same run, so the ratio is what matters.
func BenchmarkChain(b *testing.B) {
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
		r.Header.Set("X-Forwarded-For", "10.0.0.1")
		r.Header.Set("User-Agent", "bench")
		return r
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	for _, cc := range []int{0, 10} {
		b.Run("layers/cc="+strconv.Itoa(cc), func(b *testing.B) {
			h := benchChain(cc, ok)
			r := req()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(discardWriter{h: http.Header{}}, r)
			}
		})
	}

	app := httptest.NewServer(ok)
	defer app.Close()
	target, _ := url.Parse(app.URL)
	bare := httputil.NewSingleHostReverseProxy(target)
	bare.Transport = &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true}
	ours := pkghttp.NewHeaderPruningReverseProxy(target.Host, pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
	ours.Transport = pkghttp.NewProxyTransport(10)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"proxy/bare-reverseproxy", bare},
		{"proxy/chain-cc=10", benchChain(10, ours)},
		{"proxy/chain-cc=0", benchChain(0, ours)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := req()
				for pb.Next() {
					w := discardWriter{h: http.Header{}}
					tc.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// discardWriter is a ResponseWriter that throws the response away, so the
// benchmark measures the chain and not a recorder.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (w discardWriter) WriteHeader(int)             {}
