package sharedmain

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opencensus.io/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"github.com/queue-proxy/queue-proxy/pkg/observability/sampling"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanexport"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

// tracingHooks is what tracing and the request log add (CONTRACT.md §3.11,
// §5.5): layers for the chain (nil when off), the upstream transport wrapper
// (client spans, trace headers), the queue layer's and the probe handler's
// spans, and a flush at exit.
type tracingHooks struct {
	requestLog layer // outermost
	// serverSpan is the server span of the newest generation (outermost,
	// probes skipped); serverSpan115 that of 1.15 (inside the drainer,
	// CONTRACT.md §3.1b). At most one is set.
	serverSpan, serverSpan115 layer
	wrapTransport             func(http.RoundTripper) http.RoundTripper
	proxySpans                queue.SpanNames // the queue layer's spans; zero: none
	// probeSpan, when set, is the health-probe handler's span name (1.15)
	// and probeSampler its sampler.
	probeSpan    string
	probeSampler trace.Sampler
	// exportSpan sends a finished span to the exporter, whatever the
	// sampler says (the startup trace); nil when tracing is off.
	exportSpan func(*trace.SpanData)
	flush      func()
}

// stdout receives request-log lines and, with the stdout tracing protocol,
// spans; both share one lock so that lines never interleave. Tests replace
// it.
var stdout io.Writer = os.Stdout

// Tracing backends and protocols (CONTRACT.md §1b, §1d, §5.6).
const (
	tracingZipkin   = "zipkin"
	tracingStdout   = "stdout"
	tracingOTLPGRPC = "grpc"
	tracingOTLPHTTP = "http/protobuf"
)

// finalTraceExportTimeout bounds the flush of queued spans at exit
// (CONTRACT.md §5.6).
const finalTraceExportTimeout = 10 * time.Second

// tracingSettings is the tracing setup both generations' variables resolve
// to: an exporter ("" = tracing off) and a sampler.
type tracingSettings struct {
	exporter string // tracingZipkin, tracingStdout, tracingOTLPGRPC, tracingOTLPHTTP or ""
	endpoint string // Zipkin v2 spans URL, or the OTLP endpoint as configured
	sampler  trace.Sampler
	source   string // which variables chose it, for the startup log
}

// resolveTracing decides the tracing setup. OBSERVABILITY_CONFIG's tracing
// wins when its protocol is not none; otherwise the 1.15 TRACING_CONFIG_*
// variables apply:
//
//   - tracing.protocol none (the default): no opinion.
//   - grpc, http/protobuf: OTLP export to tracing.endpoint (the
//     OTEL_EXPORTER_OTLP_* variables apply), sampled by Knative's newest
//     rules (package sampling: tracing.samplingRate, OTEL_TRACES_SAMPLER,
//     OTEL_TRACES_SAMPLER_ARG).
//   - stdout: each span as a line on stdout, every request sampled (as
//     Knative's stdout exporter samples everything).
//   - zipkin (our extension): Zipkin export to tracing.endpoint, sampled as
//     grpc is.
//   - anything else is an error, as it is fatal in Knative; so is an
//     unparsable OTEL_TRACES_SAMPLER_ARG.
//
// TRACING_CONFIG_BACKEND=zipkin exports to TRACING_CONFIG_ZIPKIN_ENDPOINT,
// sampled at TRACING_CONFIG_SAMPLE_RATE (always with TRACING_CONFIG_DEBUG).
// In Knative 1.15 an unset backend counted as enabled, but without an
// exporter, so it only generated trace ids that nobody recorded; here unset
// and "none" mean off. Other backends, and zipkin without a usable
// endpoint, are off with a warning.
func resolveTracing(cfg *config, oc TracingConfig, getenv func(string) string, logger *zap.SugaredLogger) (tracingSettings, error) {
	switch oc.Protocol {
	case "", ProtocolNone:
		return resolveLegacyTracing(cfg, logger), nil
	case tracingStdout:
		return tracingSettings{exporter: tracingStdout, sampler: trace.AlwaysSample(), source: "OBSERVABILITY_CONFIG, every request sampled"}, nil
	case tracingZipkin, tracingOTLPGRPC, tracingOTLPHTTP:
		if oc.Protocol == tracingZipkin {
			if err := checkZipkinEndpoint(oc.Endpoint); err != nil {
				legacy := resolveLegacyTracing(cfg, logger)
				logger.Warnf("OBSERVABILITY_CONFIG tracing.protocol zipkin: tracing.endpoint %v; %s", err, legacyFallback(legacy))
				return legacy, nil
			}
		}
		sampler, desc, err := sampling.FromConfig(oc.SamplingRate, getenv)
		var warning *sampling.Warning
		switch {
		case errors.As(err, &warning):
			logger.Warnw("Ignoring the trace sampler's environment, as the OpenTelemetry SDK does", zap.Error(err))
		case err != nil:
			return tracingSettings{}, err
		}
		return tracingSettings{exporter: oc.Protocol, endpoint: oc.Endpoint, sampler: sampler,
			source: "OBSERVABILITY_CONFIG, sampler " + desc}, nil
	}
	return tracingSettings{}, errors.New("OBSERVABILITY_CONFIG: tracing.protocol " + strconv.Quote(oc.Protocol) +
		" is not one of none, grpc, http/protobuf, stdout, zipkin")
}

func legacyFallback(legacy tracingSettings) string {
	if legacy.exporter != "" {
		return "using TRACING_CONFIG_BACKEND=zipkin instead"
	}
	return "tracing is off"
}

func resolveLegacyTracing(cfg *config, logger *zap.SugaredLogger) tracingSettings {
	switch cfg.TracingConfigBackend {
	case "", ProtocolNone:
		if cfg.TracingConfigZipkinEndpoint != "" {
			logger.Warn("TRACING_CONFIG_ZIPKIN_ENDPOINT is set but TRACING_CONFIG_BACKEND is not zipkin: tracing is off")
		}
		return tracingSettings{}
	case tracingZipkin:
		if err := checkZipkinEndpoint(cfg.TracingConfigZipkinEndpoint); err != nil {
			logger.Warnf("TRACING_CONFIG_BACKEND=zipkin, but TRACING_CONFIG_ZIPKIN_ENDPOINT %v: tracing is off", err)
			return tracingSettings{}
		}
		source := "TRACING_CONFIG_*, sample rate " + strconv.FormatFloat(cfg.TracingConfigSampleRate, 'g', -1, 64)
		if cfg.TracingConfigDebug {
			source = "TRACING_CONFIG_*, debug: every request sampled"
		}
		return tracingSettings{exporter: tracingZipkin, endpoint: cfg.TracingConfigZipkinEndpoint,
			sampler: pkgobs.LegacySampler(cfg.TracingConfigSampleRate, cfg.TracingConfigDebug), source: source}
	}
	logger.Warnf("TRACING_CONFIG_BACKEND %q is not supported (only zipkin and none): tracing is off", cfg.TracingConfigBackend)
	return tracingSettings{}
}

// checkZipkinEndpoint accepts an absolute http(s) URL.
func checkZipkinEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New(strconv.Quote(endpoint) + " is not an http(s) URL")
	}
	return nil
}

// setupTracing builds tracing and the request log.
func setupTracing(cfg *config, obs observability, env Env, logger *zap.SugaredLogger) (tracingHooks, error) {
	hooks := tracingHooks{flush: func() {}}
	settings, err := resolveTracing(cfg, obs.config.Tracing, os.Getenv, logger)
	if err != nil {
		return hooks, err
	}
	out := &lockedWriter{w: stdout}
	if settings.exporter != "" {
		exporter, closeExporter, err := newSpanExporter(settings, obs.gen, env, out, logger)
		if err != nil {
			return hooks, err
		}
		hooks = tracingHooksFor(obs.gen, settings.sampler, routeTagFunc(obs.gen.RouteTag), exporter, closeExporter, logger)
	}
	hooks.requestLog = requestLogLayer(cfg, obs, env, out, hooks.serverSpan != nil, logger)
	return hooks, nil
}

// newSpanExporter builds the exporter settings name, and what flushes and
// closes it at exit (nil when nothing needs to).
func newSpanExporter(settings tracingSettings, gen *pkgobs.Generation, env Env, out io.Writer, logger *zap.SugaredLogger) (trace.Exporter, func(context.Context) error, error) {
	switch settings.exporter {
	case tracingZipkin:
		local := pkgobs.ZipkinEndpoint(zipkinServiceName(env), env.ServingPodIP)
		errLog, _ := zap.NewStdLogAt(logger.Desugar(), zapcore.WarnLevel) // only fails for an invalid level
		z := pkgobs.NewZipkinHTTPExporter(settings.endpoint, local, errLog)
		logger.Infof("Tracing enabled: Zipkin at %s as %q (%s)", settings.endpoint, local.ServiceName, settings.source)
		return z, func(context.Context) error { return z.Close() }, nil
	case tracingStdout:
		if gen.Spans.HTTP != pkgobs.SpansSemConv { // 1.15 spans requested with the newest's protocol
			logger.Infof("Tracing enabled: spans as Zipkin JSON on stdout (%s)", settings.source)
			return pkgobs.NewZipkinJSONExporter(out, pkgobs.ZipkinEndpoint(zipkinServiceName(env), env.ServingPodIP)), nil, nil
		}
		logger.Infof("Tracing enabled: spans as OpenTelemetry stdout lines (%s)", settings.source)
		return spanexport.NewStdout(out, spanSource(gen, env, logger), nil), nil, nil
	}
	ocfg, err := otlp.ResolveConfig(otlp.Traces, settings.exporter, settings.endpoint, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	batch, err := spanbatch.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	batch.OnDrop = func(dropped, total uint64) {
		logger.Warnw("Trace export queue full: spans dropped", "dropped", dropped, "droppedTotal", total,
			"queueSize", batch.MaxQueueSize)
	}
	client, err := otlp.NewClient(ocfg)
	if err != nil {
		return nil, nil, err
	}
	e := spanexport.NewOTLP(client, batch, spanSource(gen, env, logger),
		func(err error) { logger.Warnw("Failed to export spans", zap.Error(err)) })
	logger.Infof("Tracing enabled: OTLP export to %s (%s)", ocfg, settings.source)
	return e, e.Shutdown, nil
}

// spanSource is the resource and scopes of the newest generation's spans:
// the queue layer's spans in gen.Spans.QueueScope, the rest (server and
// client spans) in HTTPScope.
func spanSource(gen *pkgobs.Generation, env Env, logger *zap.SugaredLogger) spanexport.Source {
	res, err := pkgobs.NewResource(resourceInput(env))
	if err != nil {
		logger.Warnw("Ignoring part of OTEL_RESOURCE_ATTRIBUTES", zap.Error(err))
	}
	queueScope, httpScope := gen.Spans.QueueScope, gen.Spans.HTTPScope
	proxy, wait := gen.Spans.Proxy, gen.Spans.Wait
	return spanexport.Source{
		Resource:          res,
		ResourceSchemaURL: pkgobs.ResourceSchemaURL,
		Scopes: []spanexport.Scope{
			{Name: queueScope.Name, Version: queueScope.Version, SchemaURL: queueScope.SchemaURL},
			{Name: httpScope.Name, Version: httpScope.Version, SchemaURL: httpScope.SchemaURL},
		},
		ScopeOf: func(sd *trace.SpanData) int {
			if sd.Name == proxy || sd.Name == wait {
				return 0
			}
			return 1
		},
	}
}

// zipkinServiceName is the service queue-proxy reports spans as: the pod
// name (SERVING_POD), at the pod IP, as Knative 1.15 set its Zipkin
// exporter's local endpoint (CONTRACT.md §5.5).
func zipkinServiceName(env Env) string { return env.ServingPod }

// tracingHooksFor registers exporter with OpenCensus and returns the
// tracing layers of gen's conventions; flush unregisters it and calls
// closeExporter (may be nil), which sends what it holds, within
// finalTraceExportTimeout.
func tracingHooksFor(gen *pkgobs.Generation, sampler trace.Sampler, routeTag func(*http.Request) string,
	exporter trace.Exporter, closeExporter func(context.Context) error, logger *zap.SugaredLogger) tracingHooks {
	trace.RegisterExporter(exporter)
	spans := gen.Spans
	semconv := spans.HTTP == pkgobs.SpansSemConv
	// otelhttp's transport traces what its server filter skipped; in 1.15
	// every request that reaches the transport has a server span.
	var clientRoot trace.Sampler
	if semconv {
		clientRoot = sampler
	}
	hooks := tracingHooks{
		wrapTransport: func(rt http.RoundTripper) http.RoundTripper { return pkgobs.SpanTransport(rt, spans, clientRoot) },
		proxySpans:    queue.SpanNames{Proxy: spans.Proxy, Wait: spans.Wait, UpstreamUnderWait: spans.ClientUnderWait},
		probeSpan:     spans.Probe,
		probeSampler:  sampler,
		exportSpan:    exporter.ExportSpan,
		flush: func() {
			trace.UnregisterExporter(exporter)
			if closeExporter == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), finalTraceExportTimeout)
			defer cancel()
			if err := closeExporter(ctx); err != nil {
				logger.Warnw("Failed to flush traces", zap.Error(err))
			}
		},
	}
	server := func(next http.Handler) http.Handler { return pkgobs.ServerSpanHandler(next, sampler, spans, routeTag) }
	if semconv {
		hooks.serverSpan = server
	} else {
		hooks.serverSpan115 = server
	}
	return hooks
}

// requestLogLayer is the request log (CONTRACT.md §3.11), or nil when it is
// off or its template does not parse. Either generation's switch turns it
// (and probe logging) on; SERVING_REQUEST_LOG_TEMPLATE, when not empty, wins
// over OBSERVABILITY_CONFIG's requestLogTemplate, which defaults to
// DefaultRequestLogTemplate. With tracing on, a request that brought no
// trace id logs the id of the trace queue-proxy started for it.
func requestLogLayer(cfg *config, obs observability, env Env, out io.Writer, spanTraceID bool, logger *zap.SugaredLogger) layer {
	if !cfg.ServingEnableRequestLog && !obs.config.EnableRequestLog {
		return nil
	}
	tmpl := cfg.ServingRequestLogTemplate
	if tmpl == "" {
		tmpl = obs.config.RequestLogTemplate
	}
	probes := cfg.ServingEnableProbeRequestLog || obs.config.EnableProbeRequestLog
	getter := pkghttp.RequestLogTemplateInputGetterFromRevision(&pkghttp.RequestLogRevision{
		Name:          env.ServingRevision,
		Namespace:     env.ServingNamespace,
		Service:       env.ServingService,
		Configuration: env.ServingConfiguration,
		PodName:       env.ServingPod,
		PodIP:         env.ServingPodIP,
	})
	if spanTraceID {
		getter = withSpanTraceID(getter)
	}
	// Parse once now, so that a bad template is reported at startup.
	if _, err := pkghttp.NewRequestLogHandler(http.NotFoundHandler(), out, tmpl, getter, probes); err != nil {
		logger.Errorw("Error setting up request logger. Request logs will be unavailable.", zap.Error(err))
		return nil
	}
	return func(next http.Handler) http.Handler {
		h, _ := pkghttp.NewRequestLogHandler(next, out, tmpl, getter, probes) // parsed above
		return h
	}
}

// withSpanTraceID fills .TraceID from the request's span when the headers
// carried none.
func withSpanTraceID(get pkghttp.RequestLogTemplateInputGetter) pkghttp.RequestLogTemplateInputGetter {
	return func(req *http.Request, resp *pkghttp.RequestLogResponse) *pkghttp.RequestLogTemplateInput {
		in := get(req, resp)
		if in.TraceID == "" {
			if span := trace.FromContext(req.Context()); span != nil {
				id := span.SpanContext().TraceID
				in.TraceID = hex.EncodeToString(id[:])
			}
		}
		return in
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
