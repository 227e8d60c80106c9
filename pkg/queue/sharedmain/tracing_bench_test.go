package sharedmain

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/reporter"
	"go.opencensus.io/trace"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
)

var benchEnv = Env{ServingNamespace: "default", ServingService: "hello", ServingConfiguration: "hello",
	ServingRevision: "hello-00001", ServingPod: "hello-00001-deployment-abc", ServingPodIP: "10.0.0.7"}

// benchTracingHooks returns the hooks run() builds for Zipkin tracing with
// sampler (nil: tracing off), the Zipkin exporter converting every span and
// handing it to a no-op reporter, and, if requestLog, the request log with
// the default template writing to io.Discard.
func benchTracingHooks(b *testing.B, sampler trace.Sampler, requestLog bool) tracingHooks {
	b.Helper()
	logger := zap.NewNop().Sugar()
	hooks := tracingHooks{flush: func() {}}
	if sampler != nil {
		exp := pkgobs.NewZipkinExporter(reporter.NewNoopReporter(), pkgobs.ZipkinEndpoint(zipkinServiceName(benchEnv), benchEnv.ServingPodIP))
		hooks = tracingHooksFor(pkgobs.Generation115, sampler, nil, exp, func(context.Context) error { return exp.Close() }, logger)
		b.Cleanup(hooks.flush)
	}
	if requestLog {
		obs := observability{config: DefaultObservabilityConfig()}
		obs.config.EnableRequestLog = true
		hooks.requestLog = requestLogLayer(&config{}, obs, benchEnv, io.Discard, hooks.serverSpan != nil, logger)
		if hooks.requestLog == nil {
			b.Fatal("no request log")
		}
	}
	return hooks
}

// benchChainWithTracing is benchChain (chain_bench_test.go) with the given
// tracing hooks.
func benchChainWithTracing(cc int, inner http.Handler, hooks tracingHooks) http.Handler {
	cfg := &config{ContainerConcurrency: cc, RevisionTimeoutSeconds: 300, DrainQuietPeriod: 30 * time.Second}
	logger := zap.NewNop().Sugar()
	return buildChain(chainParams{
		cfg: cfg, logger: logger, breaker: newBreaker(cc, logger), stats: netstats.NewRequestStats(time.Now()),
		prober: func() bool { return true }, inner: inner, clock: clock.RealClock{},
		tracing: hooks, metrics: metricsHooks{flush: func() {}},
	})
}

// BenchmarkChainTracing measures what tracing and the request log add to the
// whole in-process chain (CONTAINER_CONCURRENCY=10, so queue_wait exists):
// "off" is the chain without them; "rate0" and "rate1" are Zipkin tracing
// sampled at 0 and 1 (every span converted to Zipkin's model and dropped by
// a no-op reporter); "log" is the request log with the default template
// (to io.Discard), tracing off. "layers" has an innermost handler that writes
// 2 bytes; "proxy" adds the reverse proxy and the traced transport to a
// loopback app, in parallel. Compare the ratios within one run.
func BenchmarkChainTracing(b *testing.B) {
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://svc.example/api/items", nil)
		r.Header.Set("X-Forwarded-For", "10.0.0.1")
		r.Header.Set("User-Agent", "bench")
		return r
	}
	modes := []struct {
		name       string
		sampler    trace.Sampler
		requestLog bool
	}{
		{"off", nil, false},
		{"rate0", pkgobs.LegacySampler(0, false), false},
		{"rate1", pkgobs.LegacySampler(1, false), false},
		{"log", nil, true},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	for _, m := range modes {
		b.Run("layers/"+m.name, func(b *testing.B) {
			h := benchChainWithTracing(10, ok, benchTracingHooks(b, m.sampler, m.requestLog))
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
	for _, m := range modes {
		b.Run("proxy/"+m.name, func(b *testing.B) {
			hooks := benchTracingHooks(b, m.sampler, m.requestLog)
			ours := pkghttp.NewHeaderPruningReverseProxy(target.Host, pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
			transport := pkghttp.NewProxyTransport(10)
			defer transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			ours.Transport = transport
			if hooks.wrapTransport != nil {
				ours.Transport = hooks.wrapTransport(transport)
			}
			h := benchChainWithTracing(10, ours, hooks)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := req()
				for pb.Next() {
					h.ServeHTTP(discardWriter{h: http.Header{}}, r)
				}
			})
		})
	}
}
