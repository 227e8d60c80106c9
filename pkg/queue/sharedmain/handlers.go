package sharedmain

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netheader "knative.dev/networking/pkg/http/header"
	netstats "knative.dev/networking/pkg/http/stats"

	"github.com/queue-proxy/queue-proxy/pkg/http/handler"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
	"github.com/queue-proxy/queue-proxy/pkg/queue/health"
)

// timeoutBody is what the timeout handler writes (or appends) on a timeout.
const timeoutBody = "request timeout"

// drainResetDelay is how long /wait-for-drain waits for SIGTERM before it
// concludes that only the user container is restarting and cancels the drain.
const drainResetDelay = time.Second

// layer wraps a handler in one stage of the request path.
type layer func(next http.Handler) http.Handler

type chainParams struct {
	cfg     *config
	logger  *zap.SugaredLogger
	breaker *queue.Breaker
	stats   *netstats.RequestStats
	prober  func() bool
	inner   http.Handler // the lean upstream path or Defaults.ProxyHandler
	clock   clock.WithTicker
	tracing tracingHooks
	metrics metricsHooks
	// live records every request for /debug/stats (nil: the debug
	// listener is off); timeline marks the first probe answered 200 and
	// the first request passed on (nil: none).
	live     *liveStats
	timeline *timeline
}

// mainChain is the composed main-port handler and the layers that the
// lifecycle needs to reach.
type mainChain struct {
	http.Handler
	drainer *handler.Drainer
	tracker *handler.HijackTracker
}

// buildChain composes the main-port request path (CONTRACT.md §3.1). The
// list reads outermost first, as a request meets it; nil entries are
// features that are off and cost nothing.
func buildChain(p chainParams) mainChain {
	probes := health.ProbeHandler(p.prober)
	if p.tracing.probeSpan != "" {
		probes = health.TracedProbeHandler(p.prober, p.tracing.probeSpan, p.tracing.probeSampler)
	}
	var proxyOpts []queue.ProxyOption
	var liveLayer, firstRequest layer
	if p.live != nil {
		liveLayer = p.live.layer
		proxyOpts = append(proxyOpts, queue.ObserveQueue())
	}
	if p.timeline != nil {
		probes = p.timeline.probes(probes)
		firstRequest = p.timeline.firstRequest
	}
	drainer := &handler.Drainer{
		HealthCheck:           probes,
		HealthCheckUAPrefixes: []string{netheader.ActivatorUserAgent, netheader.AutoscalingUserAgent},
		QuietPeriod:           p.cfg.DrainQuietPeriod,
		Clock:                 p.clock,
	}
	tracker := &handler.HijackTracker{Clock: p.clock}
	overall, responseStart, idle := p.cfg.timeouts()
	timeouts := func(*http.Request) (time.Duration, time.Duration, time.Duration) {
		return overall, responseStart, idle
	}

	h := compose(p.inner,
		p.tracing.serverSpan, // newest: outermost, probes skipped
		p.tracing.requestLog,
		func(next http.Handler) http.Handler { drainer.Inner = next; return drainer },
		tracker.Handler,
		when(p.cfg.EnableHTTPFullDuplex, func(next http.Handler) http.Handler { return handler.FullDuplex(next, p.logger) }),
		p.tracing.serverSpan115, // 1.15: inside the drainer (CONTRACT.md §3.1b)
		p.metrics.requestMetrics,
		liveLayer, // just outside the timeout: its 504 goes through it
		func(next http.Handler) http.Handler {
			return handler.NewTimeoutHandler(next, timeoutBody, timeouts, p.logger)
		},
		queue.ForwardedShimHandler,
		func(next http.Handler) http.Handler {
			return queue.NewProxyHandler(p.breaker, p.stats, p.tracing.proxySpans, next, proxyOpts...)
		},
		p.metrics.appMetrics,
		firstRequest,
	)
	return mainChain{Handler: h, drainer: drainer, tracker: tracker}
}

// compose wraps inner in layers, the first layer outermost. Nil layers are
// skipped.
func compose(inner http.Handler, layers ...layer) http.Handler {
	h := inner
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i] != nil {
			h = layers[i](h)
		}
	}
	return h
}

// when returns l if on, else nil (an absent layer).
func when(on bool, l layer) layer {
	if on {
		return l
	}
	return nil
}

// adminHandler serves the admin port: /wait-for-drain (CONTRACT.md §6.2),
// called by the user container's preStop hook, and /healthz, the proxy's
// own liveness (healthz.go; nil: not served). /wait-for-drain drains and
// answers 200 once the drain completes. If no SIGTERM arrives within a
// second, the hook was a container restart rather than a pod shutdown, so
// the drain is reset and probes recover.
func adminHandler(ctx context.Context, logger *zap.SugaredLogger, drainer *handler.Drainer, clk clock.WithTicker, healthz http.Handler) http.Handler {
	mux := http.NewServeMux()
	if healthz != nil {
		mux.Handle(healthzPath, healthz)
	}
	mux.HandleFunc(queue.RequestQueueDrainPath, func(w http.ResponseWriter, _ *http.Request) {
		logger.Info("Attached drain handler from user-container")
		timer := clk.NewTimer(drainResetDelay)
		go func() {
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C():
				if ctx.Err() == nil {
					drainer.Reset()
				}
			}
		}()
		drainer.Drain()
		w.WriteHeader(http.StatusOK)
	})
	return mux
}
