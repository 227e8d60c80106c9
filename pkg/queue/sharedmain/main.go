// Package sharedmain is queue-proxy's composition root and its public
// extension API, shaped like Knative's: a custom build calls
// Main(opts...) with Options that may wrap the context, the upstream transport
// and the proxy handler.
//
// Main reads the environment, builds the logger, the transport and the
// default reverse proxy, applies the Options in order, then builds the stats
// reporter, the prober and the handler chain, starts the servers and waits
// for a signal; it then drains (CONTRACT.md §6) and returns nil, or returns
// the first error, for which the caller exits 1.
package sharedmain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"go.opencensus.io/trace"
	"go.uber.org/zap"
	"k8s.io/utils/clock"
	netstats "knative.dev/networking/pkg/http/stats"
	"knative.dev/pkg/signals"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/handler"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

const (
	// PodInfoAnnotationsPath is the downward-API file of pod annotations,
	// mounted when the queueproxy.mount-podinfo feature is on.
	PodInfoAnnotationsPath = queue.PodInfoDirectory + "/" + queue.PodInfoAnnotationsFilename

	// QPOptionTokenDirPath holds projected service-account tokens, one file
	// per audience, for Options that call other services.
	QPOptionTokenDirPath = queue.TokenDirectory

	// reportingPeriod is how often the autoscaler Stat is computed.
	reportingPeriod = time.Second
)

// Option customises queue-proxy. Options run in argument order, after the
// logger, the transport and the default reverse proxy exist and before the
// stats reporter, the prober, the handler chain and the servers are built.
type Option func(*Defaults)

// Defaults is what Options may read and change.
type Defaults struct {
	// Logger is the configured queueproxy logger; do not replace it.
	Logger *zap.SugaredLogger
	// Env is the parsed identity of the revision and pod; read-only.
	Env Env
	// Ctx is the signal context. An Option may replace it with a derived one;
	// later Options, the admin handler and the main wait use the result, so
	// cancelling it starts the graceful shutdown.
	Ctx context.Context
	// Transport carries requests to the user container. It may be wrapped or
	// replaced; the final value is set on the default reverse proxy.
	Transport http.RoundTripper
	// ProxyHandler is the innermost handler: initially the default
	// *httputil.ReverseProxy to 127.0.0.1:USER_PORT. It may be tuned,
	// wrapped or replaced.
	ProxyHandler http.Handler
}

// Env is the parsed identity of the revision and pod.
type Env struct {
	ServingNamespace     string
	ServingService       string
	ServingConfiguration string
	ServingRevision      string
	ServingPod           string
	ServingPodIP         string
}

// Main runs queue-proxy until SIGTERM or SIGINT and a graceful drain; a
// second signal exits the process with status 1 at once. It returns nil
// after a clean shutdown and an error, already reported on stderr or in the
// log, when startup or a server fails.
func Main(opts ...Option) error {
	return run(signals.NewContext(), runtimeDeps{clock: clock.RealClock{}, setMaxProcs: setMaxProcs,
		setMemoryLimit: setMemoryLimit, releaseMemory: debug.FreeOSMemory, processStart: processStart}, opts...)
}

// runtimeDeps are the process-wide things tests replace.
type runtimeDeps struct {
	// clock drives the stats ticker, the drain and the admin reset timer;
	// the timeout handler always uses the real clock.
	clock clock.WithTicker
	// setMaxProcs sizes GOMAXPROCS, setMemoryLimit the runtime's soft
	// memory limit (process-wide, so tests leave them nil).
	setMaxProcs, setMemoryLimit func(logf func(string, ...any))
	// listening, if set, is told each server's bound address once all
	// servers listen (tests use port 0).
	listening func(map[string]string)
	// releaseMemory, if set, is called once, startupSettle after the
	// servers listen (releaseAfterStartup).
	releaseMemory func()
	// processStart is where the startup timeline counts from; zero: when
	// run starts (tests run many in one process).
	processStart time.Time
}

func run(ctx context.Context, deps runtimeDeps, opts ...Option) error {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return err
	}
	obs, err := cfg.observability()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return err
	}
	env := cfg.env()
	started := deps.processStart
	if started.IsZero() {
		started = time.Now()
	}
	tl := newTimeline(started, time.Now)
	tl.mark(phaseEnvParsed)
	logger, warnings := newLogger(cfg.ServingLoggingConfig, cfg.ServingLoggingLevel, env)
	defer logger.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	for _, w := range warnings {
		logger.Warn(w)
	}
	if deps.setMaxProcs != nil {
		// Off the path to the first answers: it parses the cgroup files
		// (about 0.4 ms of CPU), which on a one-CPU pod would delay the
		// first probes of a cold start; the runtime's own default is fine
		// until then.
		// (Real time: setMaxProcs is process-wide, so tests never set it.)
		maxProcsTimer := time.AfterFunc(maxProcsDelay, func() {
			deps.setMaxProcs(logger.Infof)
			if deps.setMemoryLimit != nil {
				deps.setMemoryLimit(logger.Infof)
			}
		})
		defer maxProcsTimer.Stop()
	}

	// The rest of the environment, checked by the code -print-config runs
	// (printconfig.go) before anything is built; /debug/config shows what
	// it read.
	checked, stage, err := checkEnv(cfg, obs)
	if err != nil {
		logger.Errorw(stage, zap.Error(err))
		return err
	}

	logger.Infof("Observability outputs of the %s generation (%s)", obs.gen.Name, obs.genReason)
	tracing, err := setupTracing(cfg, obs, env, logger)
	if err != nil {
		logger.Errorw("Failed to set up tracing", zap.Error(err))
		return err
	}
	defer tracing.flush()

	breaker := newBreaker(cfg.ContainerConcurrency, logger)
	metrics, err := setupMetrics(cfg, obs, env, logger, breaker)
	if err != nil {
		logger.Errorw("Failed to set up request metrics", zap.Error(err))
		return err
	}
	defer metrics.flush()

	transport := pkghttp.NewProxyTransport(cfg.ContainerConcurrency)
	var upstream http.RoundTripper = transport
	for _, wrap := range []func(http.RoundTripper) http.RoundTripper{metrics.wrapTransport, tracing.wrapTransport} {
		if wrap != nil {
			upstream = wrap(upstream)
		}
	}
	reverseProxy := pkghttp.NewHeaderPruningReverseProxy("127.0.0.1:"+cfg.UserPort, pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
	reverseProxy.ErrorHandler = pkghttp.ErrorHandler(logger)
	liveOn := debugOn(cfg.DebugAddress)
	if liveOn {
		reverseProxy.ErrorHandler = observeUpstreamErrors(reverseProxy.ErrorHandler)
	}
	paths := newUpstreamPaths(cfg, reverseProxy, upstream, metrics)

	d := Defaults{Logger: logger, Env: env, Ctx: ctx, Transport: upstream, ProxyHandler: reverseProxy}
	for _, opt := range opts {
		opt(&d)
	}
	inner, lean := paths.handler(&d, tracing)
	reverseProxy.Transport = d.Transport
	if lean {
		logger.Info("Plain HTTP/1.1 requests take the lean upstream path; the rest net/http's")
	} else {
		logger.Info("Every request takes net/http's upstream path")
	}

	start := deps.clock.Now()
	stats := netstats.NewRequestStats(start)
	reporter := queue.NewProtobufStatsReporter(env.ServingPod, start, reportingPeriod)
	var live *liveStats
	if liveOn {
		live = newLiveStats(start, deps.clock.Now, breaker, tl)
	}
	var drainer *handler.Drainer // set below; the healthz asks it
	hz := newHealthz(deps.clock, reportingPeriod, func() bool { return drainer.Draining() })
	stopReporting := reportEvery(deps.clock, reportingPeriod, stats, reporter, hz.ticked, live.rotater())
	defer stopReporting()

	prober, err := newProber(cfg, logger)
	if err != nil {
		logger.Errorw("Queue container failed to parse readiness probe", zap.Error(err))
		return err
	}
	startupTrace := newStartupTrace()
	tl.onReady = func() {
		logger.Desugar().Info("queue-proxy ready: first probe answered 200", tl.logFields()...)
		exportStartup(tracing.exportSpan, startupTrace.spans(tl, true))
	}
	tl.onFirstRequest = func() { exportStartup(tracing.exportSpan, startupTrace.spans(tl, false)) }

	chain := buildChain(chainParams{
		cfg: cfg, logger: logger, breaker: breaker, stats: stats, prober: tl.prober(prober),
		inner: inner, clock: deps.clock, tracing: tracing, metrics: metrics, live: live, timeline: tl,
	})
	drainer = chain.drainer

	extra := metrics.servers
	tlsServer, stopTLS, err := newTLSServer(cfg, logger, chain)
	if err != nil {
		logger.Errorw("Failed to set up TLS", zap.Error(err))
		return err
	}
	defer stopTLS()
	if tlsServer != nil {
		extra = append(extra, *tlsServer)
	}

	debugHandlers := debugMux(checked.renderOnce())
	if live != nil {
		debugHandlers.Handle("GET "+debugStatsPath, live)
	}
	if debug := listenDebug(cfg.DebugAddress, debugHandlers, logger); debug != nil {
		extra = append(extra, *debug)
	}

	servers, err := listenAll(cfg, obs, chain, adminHandler(d.Ctx, logger, chain.drainer, deps.clock, hz), reporter, extra...)
	if err != nil {
		logger.Errorw("Failed to bring up queue-proxy, shutting down.", zap.Error(err))
		return err
	}
	servers.trackAccepts(hz, deps.clock)
	tl.mark(phaseListening)
	if deps.releaseMemory != nil {
		releaseAfterStartup(d.Ctx, deps.clock, deps.releaseMemory)
	}
	if deps.listening != nil {
		deps.listening(servers.addrs())
	}
	errCh := servers.serve(logger)
	logger.Info("Starting queue-proxy")

	select {
	case err := <-errCh:
		logger.Errorw("Failed to bring up queue-proxy, shutting down.", zap.Error(err))
		servers.close()
		return err
	case <-d.Ctx.Done():
	}

	logger.Info("Received TERM signal, attempting to gracefully shutdown servers.")
	logger.Infof("Sleeping %v to allow K8s propagation of non-ready state", cfg.DrainQuietPeriod)
	chain.drainer.Drain()

	servers.shutdown(logger)

	hctx, cancel := context.WithTimeout(context.Background(), cfg.HijackDrainTimeout)
	defer cancel()
	if err := chain.tracker.Drain(hctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Warnw("Hijack connection drain failed", zap.Error(err))
	}
	if c, ok := transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	paths.closeIdle()
	logger.Info("Shutdown complete, exiting...")
	return nil
}

// newBreaker returns the concurrency breaker for CONTAINER_CONCURRENCY, or nil
// when it is below 1 (unlimited).
func newBreaker(cc int, logger *zap.SugaredLogger) *queue.Breaker {
	if cc < 1 {
		return nil
	}
	params := queue.BreakerParams{QueueDepth: 10 * cc, MaxConcurrency: cc, InitialCapacity: cc}
	logger.Infof("Queue container is starting with BreakerParams = %#v", params)
	return queue.NewBreaker(params)
}

// reportEvery computes the autoscaler Stat every period until stopped, and
// calls each of also (if not nil) with the tick's time.
func reportEvery(clk clock.WithTicker, period time.Duration, stats *netstats.RequestStats, reporter *queue.ProtobufStatsReporter, also ...func(time.Time)) (stop func()) {
	ticker := clk.NewTicker(period)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case now := <-ticker.C():
				reporter.Report(now, stats.Report(now))
				for _, f := range also {
					if f != nil {
						f(now)
					}
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		ticker.Stop()
		close(done)
		<-finished
	}
}

// exportStartup sends the startup trace's spans to the exporter, if
// tracing is on.
func exportStartup(export func(*trace.SpanData), spans []*trace.SpanData) {
	if export == nil {
		return
	}
	for _, sd := range spans {
		export(sd)
	}
}
