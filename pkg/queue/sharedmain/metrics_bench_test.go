package sharedmain

import (
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// benchMetricsHooks returns the hooks run() builds for
// SERVING_REQUEST_METRICS_BACKEND=prometheus, listening on a free loopback
// port, for the benchmark's CONTAINER_CONCURRENCY.
func benchMetricsHooks(b *testing.B, cc int, gen *pkgobs.Generation) metricsHooks {
	b.Helper()
	b.Setenv("METRICS_PROMETHEUS_HOST", "")
	b.Setenv("METRICS_PROMETHEUS_PORT", "")
	obs := observability{config: DefaultObservabilityConfig(), gen: gen}
	obs.config.RequestMetrics.Endpoint = "127.0.0.1:0"
	logger := zap.NewNop().Sugar()
	hooks, err := newMetricsHooks(&config{ServingRequestMetricsBackend: "prometheus"}, obs,
		Env{ServingNamespace: "default", ServingConfiguration: "hello", ServingRevision: "hello-00001", ServingPod: "hello-00001-deployment-abc"},
		logger, newBreaker(cc, logger), clock.RealClock{})
	if err != nil {
		b.Fatal(err)
	}
	if hooks.requestMetrics == nil {
		b.Fatal("request metrics are off")
	}
	b.Cleanup(hooks.flush)
	return hooks
}

// benchChainWithMetrics is benchChain (chain_bench_test.go) with the given
// metrics hooks.
func benchChainWithMetrics(cc int, inner http.Handler, metrics metricsHooks) http.Handler {
	cfg := &config{ContainerConcurrency: cc, RevisionTimeoutSeconds: 300, DrainQuietPeriod: 30 * time.Second}
	logger := zap.NewNop().Sugar()
	return buildChain(chainParams{
		cfg: cfg, logger: logger, breaker: newBreaker(cc, logger), stats: netstats.NewRequestStats(time.Now()),
		prober: func() bool { return true }, inner: inner, clock: clock.RealClock{},
		tracing: tracingHooks{flush: func() {}}, metrics: metrics,
	})
}

// BenchmarkChainMetrics measures what request metrics add to the whole
// in-process chain: "off" is the chain as run() builds it without them,
// "1.15" and "newest" with each generation's request metrics on
// (Prometheus), in the same run.
// "layers" has an innermost handler that writes 2 bytes, serially and in
// parallel (the parallel figure includes the OpenCensus worker, which
// aggregates on its own goroutine); "proxy" adds the reverse proxy to a
// loopback app.
func BenchmarkChainMetrics(b *testing.B) {
	req := func(i int) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
		r.Header.Set("X-Forwarded-For", "10.0.0.1")
		r.Header.Set("User-Agent", "bench")
		if i%2 == 1 {
			r.Header.Set("Knative-Serving-Tag", "canary")
		}
		return r
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	gens := map[string]*pkgobs.Generation{"1.15": pkgobs.Generation115, "newest": pkgobs.GenerationNewest}
	modes := []string{"off", "1.15", "newest"}
	chain := func(b *testing.B, cc int, inner http.Handler, mode string) http.Handler {
		if mode == "off" {
			return benchChain(cc, inner)
		}
		return benchChainWithMetrics(cc, inner, benchMetricsHooks(b, cc, gens[mode]))
	}
	for _, cc := range []int{0, 10} {
		for _, mode := range modes {
			name := "layers/cc=" + strconv.Itoa(cc) + "/metrics=" + mode
			b.Run(name, func(b *testing.B) {
				h := chain(b, cc, ok, mode)
				r := [2]*http.Request{req(0), req(1)}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					h.ServeHTTP(discardWriter{h: http.Header{}}, r[i&1])
					i++
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				h := chain(b, cc, ok, mode)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r := [2]*http.Request{req(0), req(1)}
					i := 0
					for pb.Next() {
						h.ServeHTTP(discardWriter{h: http.Header{}}, r[i&1])
						i++
					}
				})
			})
		}
	}

	app := httptest.NewServer(ok)
	defer app.Close()
	target, _ := url.Parse(app.URL)
	transport := pkghttp.NewProxyTransport(10)
	defer func() {
		if c, ok := transport.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}()
	for _, mode := range modes {
		b.Run("proxy/cc=10/metrics="+mode, func(b *testing.B) {
			ours := pkghttp.NewHeaderPruningReverseProxy(target.Host, pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
			ours.Transport = transport
			var h http.Handler
			if mode == "off" {
				h = benchChain(10, ours)
			} else {
				hooks := benchMetricsHooks(b, 10, gens[mode])
				if hooks.wrapTransport != nil {
					ours.Transport = hooks.wrapTransport(transport)
				}
				h = benchChainWithMetrics(10, ours, hooks)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := [2]*http.Request{req(0), req(1)}
				i := 0
				for pb.Next() {
					h.ServeHTTP(discardWriter{h: http.Header{}}, r[i&1])
					i++
				}
			})
		})
	}
}
