package sharedmain

import (
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"

	"go.opencensus.io/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
)

// tracingHooks is what tracing and the request log add (CONTRACT.md §3.11,
// §5.5): layers for the chain (nil when off), the upstream transport wrapper
// (client spans, trace headers) and a flush at exit.
type tracingHooks struct {
	requestLog     layer // outermost
	tracing        layer // server span
	wrapTransport  func(http.RoundTripper) http.RoundTripper
	tracingEnabled bool // ProxyHandler creates queue_proxy / queue_wait spans
	flush          func()
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

// tracingSettings is the tracing setup both generations' variables resolve
// to: an exporter ("" = tracing off) and a sampler.
type tracingSettings struct {
	exporter string // tracingZipkin, tracingStdout or ""
	endpoint string // Zipkin v2 spans URL
	sampler  trace.Sampler
	source   string // which variables chose it, for the startup log
}

// resolveTracing decides the tracing setup. OBSERVABILITY_CONFIG's tracing
// wins when its protocol is one we export to (stdout, or our extension
// zipkin); otherwise the 1.15 TRACING_CONFIG_* variables apply:
//
//   - tracing.protocol none (the default): no opinion.
//   - grpc, http/protobuf (OpenTelemetry OTLP): not supported; a warning
//     says so and whether TRACING_CONFIG_* tracing is used instead.
//   - stdout: each span as a line of Zipkin JSON on stdout, every request
//     sampled (as Knative's stdout exporter samples everything).
//   - zipkin: export to tracing.endpoint, sampled as Knative samples
//     tracing.samplingRate (ParentBasedSampler).
//   - anything else is an error, as it is fatal in Knative.
//
// TRACING_CONFIG_BACKEND=zipkin exports to TRACING_CONFIG_ZIPKIN_ENDPOINT,
// sampled at TRACING_CONFIG_SAMPLE_RATE (always with TRACING_CONFIG_DEBUG).
// In Knative 1.15 an unset backend counted as enabled, but without an
// exporter, so it only generated trace ids that nobody recorded; here unset
// and "none" mean off. Other backends, and zipkin without a usable
// endpoint, are off with a warning.
func resolveTracing(cfg *config, oc TracingConfig, logger *zap.SugaredLogger) (tracingSettings, error) {
	switch oc.Protocol {
	case "", ProtocolNone:
		return resolveLegacyTracing(cfg, logger), nil
	case tracingStdout:
		return tracingSettings{exporter: tracingStdout, sampler: trace.AlwaysSample(), source: "OBSERVABILITY_CONFIG"}, nil
	case tracingZipkin:
		err := checkZipkinEndpoint(oc.Endpoint)
		if err == nil {
			return tracingSettings{exporter: tracingZipkin, endpoint: oc.Endpoint, sampler: pkgobs.ParentBasedSampler(oc.SamplingRate),
				source: "OBSERVABILITY_CONFIG, sampling rate " + strconv.FormatFloat(oc.SamplingRate, 'g', -1, 64)}, nil
		}
		legacy := resolveLegacyTracing(cfg, logger)
		logger.Warnf("OBSERVABILITY_CONFIG tracing.protocol zipkin: tracing.endpoint %v; %s", err, legacyFallback(legacy))
		return legacy, nil
	case tracingOTLPGRPC, tracingOTLPHTTP:
		legacy := resolveLegacyTracing(cfg, logger)
		logger.Warnf("OBSERVABILITY_CONFIG tracing.protocol %q (OpenTelemetry OTLP) is not supported by this queue-proxy, which exports to Zipkin; %s",
			oc.Protocol, legacyFallback(legacy))
		return legacy, nil
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
	settings, err := resolveTracing(cfg, obs.config.Tracing, logger)
	if err != nil {
		return hooks, err
	}
	out := &lockedWriter{w: stdout}
	if settings.exporter != "" {
		local := pkgobs.ZipkinEndpoint(zipkinServiceName(env), env.ServingPodIP)
		var exporter trace.Exporter
		var closeExporter func() error
		switch settings.exporter {
		case tracingZipkin:
			errLog, _ := zap.NewStdLogAt(logger.Desugar(), zapcore.WarnLevel) // only fails for an invalid level
			z := pkgobs.NewZipkinHTTPExporter(settings.endpoint, local, errLog)
			exporter, closeExporter = z, z.Close
			logger.Infof("Tracing enabled: Zipkin at %s as %q (%s)", settings.endpoint, local.ServiceName, settings.source)
		case tracingStdout:
			exporter = pkgobs.NewZipkinJSONExporter(out, local)
			logger.Infof("Tracing enabled: spans as Zipkin JSON on stdout (%s)", settings.source)
		}
		hooks = tracingHooksFor(settings.sampler, exporter, closeExporter, logger)
	}
	hooks.requestLog = requestLogLayer(cfg, obs, env, out, hooks.tracingEnabled, logger)
	return hooks, nil
}

// zipkinServiceName is the service queue-proxy reports spans as:
// "<revision>.<namespace>", stable across the revision's pods (the pod IP
// is the endpoint's address).
func zipkinServiceName(env Env) string {
	if env.ServingNamespace == "" {
		return env.ServingRevision
	}
	return env.ServingRevision + "." + env.ServingNamespace
}

// tracingHooksFor registers exporter with OpenCensus and returns the
// tracing layers; flush unregisters it and closes it (closeExporter may be
// nil), sending what it holds.
func tracingHooksFor(sampler trace.Sampler, exporter trace.Exporter, closeExporter func() error, logger *zap.SugaredLogger) tracingHooks {
	trace.RegisterExporter(exporter)
	return tracingHooks{
		tracing:        func(next http.Handler) http.Handler { return pkgobs.ServerSpanHandler(next, sampler) },
		wrapTransport:  pkgobs.SpanTransport,
		tracingEnabled: true,
		flush: func() {
			trace.UnregisterExporter(exporter)
			if closeExporter != nil {
				if err := closeExporter(); err != nil {
					logger.Warnw("Failed to flush traces", zap.Error(err))
				}
			}
		},
	}
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
