package sharedmain

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.opencensus.io/trace"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanexport"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
)

var benchEnv = Env{ServingNamespace: "default", ServingService: "hello", ServingConfiguration: "hello",
	ServingRevision: "hello-00001", ServingPod: "hello-00001-deployment-abc", ServingPodIP: "10.0.0.7"}

// benchCollector is a collector that reads and drops what it is sent (Zipkin
// JSON or OTLP/HTTP protobuf).
func benchCollector(b *testing.B) string {
	c := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(c.Close)
	return c.URL
}

// benchTracingHooks returns the hooks run() builds for tracing with sampler
// (nil: tracing off), exporting to a local collector that drops the spans:
// for 1.15, Zipkin (each span converted to Zipkin's model, batched and
// posted as JSON); for the newest generation, OTLP/HTTP (spans batched,
// encoded as protobuf and posted). The caller flushes the hooks at the end
// of each run. If requestLog, the request log with the
// default template writing to io.Discard.
func benchTracingHooks(b *testing.B, gen *pkgobs.Generation, sampler trace.Sampler, requestLog bool) tracingHooks {
	b.Helper()
	logger := zap.NewNop().Sugar()
	hooks := tracingHooks{flush: func() {}}
	if sampler != nil && gen == pkgobs.Generation115 {
		exp := pkgobs.NewZipkinHTTPExporter(benchCollector(b)+"/api/v2/spans",
			pkgobs.ZipkinEndpoint(zipkinServiceName(benchEnv), benchEnv.ServingPodIP), log.New(io.Discard, "", 0))
		hooks = tracingHooksFor(gen, sampler, nil, exp, func(context.Context) error { return exp.Close() }, logger)
	} else if sampler != nil {
		ocfg, err := otlp.ResolveConfig(otlp.Traces, tracingOTLPHTTP, benchCollector(b)+"/v1/traces", func(string) string { return "" })
		if err != nil {
			b.Fatal(err)
		}
		client, err := otlp.NewClient(ocfg)
		if err != nil {
			b.Fatal(err)
		}
		exp := spanexport.NewOTLP(client, spanbatch.Config{}, spanSource(gen, benchEnv, logger), nil)
		hooks = tracingHooksFor(gen, sampler, routeTagFunc(gen.RouteTag), exp, exp.Shutdown, logger)
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
// "off" is the chain without them; "rate0" and "rate1" are 1.15 Zipkin
// tracing sampled at 0 and 1, "newest-rate0" and "newest-rate1" the newest
// generation's spans and OTLP/HTTP export, both exporting to a local
// collector (benchTracingHooks); run with -cpu 1 so that the exporters'
// goroutines are paid within ns/op. "log" is the request log with the default template
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
		gen        *pkgobs.Generation
		sampler    trace.Sampler
		requestLog bool
	}{
		{"off", pkgobs.Generation115, nil, false},
		{"rate0", pkgobs.Generation115, pkgobs.LegacySampler(0, false), false},
		{"rate1", pkgobs.Generation115, pkgobs.LegacySampler(1, false), false},
		{"newest-rate0", pkgobs.GenerationNewest, trace.NeverSample(), false},
		{"newest-rate1", pkgobs.GenerationNewest, trace.AlwaysSample(), false},
		{"log", pkgobs.Generation115, nil, true},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	for _, m := range modes {
		b.Run("layers/"+m.name, func(b *testing.B) {
			hooks := benchTracingHooks(b, m.gen, m.sampler, m.requestLog)
			defer hooks.flush() // per run: b.Cleanup would keep every ramp-up's exporter registered
			h := benchChainWithTracing(10, ok, hooks)
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
			hooks := benchTracingHooks(b, m.gen, m.sampler, m.requestLog)
			defer hooks.flush()
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
