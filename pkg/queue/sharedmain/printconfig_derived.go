package sharedmain

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/observability/sampling"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
	"github.com/queue-proxy/queue-proxy/pkg/queue/readiness"
)

// The "derived" section of the configuration document: what the settings
// add up to, in the terms an operator checks a change by. Each value is
// computed from what checkEnv resolved, by the rules startup applies; a
// feature that is off shows "off".

const off = "off"

// derived renders the section.
func (d docContext) derived() object {
	var out object
	out.add("listeners", d.listeners())
	out.add("timeouts", d.timeouts())
	out.add("containerConcurrency", d.concurrency())
	out.add("serverPath", d.serverPath())
	out.add("upstreamPath", d.upstreamPath())
	out.add("readinessProbe", d.readinessProbe())
	out.add("tracing", d.tracing())
	out.add("requestMetrics", d.requestMetrics())
	out.add("requestLog", d.requestLog())
	out.add("profiling", d.profiling())
	return out
}

// listeners are the addresses queue-proxy listens on; "off" when a server
// is not started.
func (d docContext) listeners() object {
	cfg := d.c.cfg
	var out object
	out.add("main", setting{Value: ":" + cfg.QueueServingPort, Source: d.envSource("QUEUE_SERVING_PORT")})
	certDir := queue.CertDirectory
	for _, spec := range d.c.specs {
		if tls, ok := spec.(*tlsEnv); ok && tls.CertDir != "" {
			certDir = tls.CertDir
		}
	}
	out.add("mainTLS", setting{Value: ":" + cfg.QueueServingTLSPort, Source: d.envSource("QUEUE_SERVING_TLS_PORT"),
		Note: "only when tls.crt and tls.key exist in " + certDir})
	out.add("admin", setting{Value: ":" + cfg.AdminPort, Source: d.envSource("QP_ADMIN_PORT")})
	out.add("metrics", setting{Value: ":" + cfg.MetricsPort, Source: d.envSource("QP_METRICS_PORT")})

	userMetrics := setting{Value: off, Source: d.metricsOutputSource()}
	if d.c.metricsOutput == ProtocolPrometheus {
		userMetrics = setting{Value: d.c.userMetricsAddr, Source: firstSource(
			d.envSource("METRICS_PROMETHEUS_PORT"), d.obsSource("requestMetrics.endpoint"), d.metricsOutputSource())}
		if d.c.userMetricsTLS.Cert != "" {
			userMetrics.Note = "HTTPS (METRICS_PROMETHEUS_TLS_CERT)"
		}
	}
	out.add("userMetrics", userMetrics)

	profile := d.profiling()
	if profile.Value == true {
		profile = setting{Value: ":" + cfg.ProfilingPort, Source: firstSource(d.envSource("PROFILING_PORT"), profile.Source)}
	} else {
		profile.Value = off
	}
	out.add("profile", profile)

	debug := setting{Value: debugAddress(cfg.DebugAddress), Source: d.envSource("QP_DEBUG_ADDRESS"), Note: "loopback only"}
	switch host, _, _ := net.SplitHostPort(debugAddress(cfg.DebugAddress)); {
	case !debugOn(cfg.DebugAddress):
		debug = setting{Value: off, Source: debug.Source}
	case host != "localhost" && !net.ParseIP(host).IsLoopback():
		debug.Note = "reachable from outside the pod"
	}
	out.add("debug", debug)
	return out
}

// timeouts are the revision's timeouts and the drain's.
func (d docContext) timeouts() object {
	cfg := d.c.cfg
	overall, start, idle := cfg.timeouts()
	offIfZero := func(t time.Duration) any {
		if t == 0 {
			return off
		}
		return t.String()
	}
	revision := setting{Value: overall.String(), Source: d.envSource("REVISION_TIMEOUT_SECONDS")}
	if overall == 0 {
		revision.Note = "every request times out at once, as in Knative"
	}
	var out object
	out.add("revision", revision)
	out.add("responseStart", setting{Value: offIfZero(start), Source: d.envSource("REVISION_RESPONSE_START_TIMEOUT_SECONDS")})
	out.add("idle", setting{Value: offIfZero(idle), Source: d.envSource("REVISION_IDLE_TIMEOUT_SECONDS")})
	out.add("drainQuietPeriod", setting{Value: cfg.DrainQuietPeriod.String(), Source: d.envSource("QP_DRAIN_QUIET_PERIOD")})
	out.add("hijackDrain", setting{Value: cfg.HijackDrainTimeout.String(), Source: d.envSource("QP_HIJACK_DRAIN_TIMEOUT")})
	return out
}

// concurrency is CONTAINER_CONCURRENCY with what it means for the breaker.
func (d docContext) concurrency() setting {
	cc := d.c.cfg.ContainerConcurrency
	s := setting{Value: cc, Source: d.envSource("CONTAINER_CONCURRENCY"), Note: "unlimited: no breaker, no queue"}
	if cc >= 1 {
		s.Note = strconv.Itoa(cc) + " requests in flight, up to " + strconv.Itoa(10*cc) + " queued, then 503"
	}
	return s
}

// serverPath is which server serves the main port, by useFastServer.
func (d docContext) serverPath() setting {
	cfg := d.c.cfg
	switch {
	case cfg.ServerPath == upstreamGeneric:
		return setting{Value: upstreamGeneric, Source: d.envSource("QP_SERVER_PATH"),
			Note: "net/http's server serves every connection"}
	case cfg.EnableHTTPFullDuplex:
		return setting{Value: upstreamGeneric, Source: d.envSource("ENABLE_HTTP_FULL_DUPLEX"),
			Note: "full duplex: net/http's server serves every connection"}
	}
	return setting{Value: upstreamAuto, Source: d.envSource("QP_SERVER_PATH"),
		Note: "plain HTTP/1.1 requests are served by the fast-path server; a connection with anything else goes to net/http's"}
}

// upstreamPath is which path requests take to the user container, by
// newUpstreamPaths' and upstreamPaths.handler's rules.
func (d docContext) upstreamPath() setting {
	cfg := d.c.cfg
	switch {
	case cfg.UpstreamPath == upstreamGeneric:
		return setting{Value: upstreamGeneric, Source: d.envSource("QP_UPSTREAM_PATH"),
			Note: "every request through net/http's ReverseProxy and Transport"}
	case cfg.EnableHTTPFullDuplex:
		return setting{Value: upstreamGeneric, Source: d.envSource("ENABLE_HTTP_FULL_DUPLEX"),
			Note: "full duplex: every request through net/http's ReverseProxy and Transport"}
	case d.c.tracing.exporter != "":
		return setting{Value: upstreamGeneric, Source: d.tracingExporterSource(),
			Note: "tracing is on: client spans wrap the transport, so every request takes net/http's path"}
	}
	return setting{Value: upstreamAuto, Source: d.envSource("QP_UPSTREAM_PATH"),
		Note: "plain HTTP/1.1 requests take the lean path, the rest net/http's; every request takes net/http's when an Option wraps or replaces the Transport or ProxyHandler"}
}

// readinessProbe is SERVING_READINESS_PROBE decoded (newProber accepted it).
func (d docContext) readinessProbe() setting {
	cfg := d.c.cfg
	source := d.envSource("SERVING_READINESS_PROBE")
	probes, err := readiness.Decode(cfg.ServingReadinessProbe, cfg.EnableMultiContainerProbes)
	if err != nil || len(probes) == 0 {
		return setting{Value: "always ready", Source: source}
	}
	var value any = redactString(cfg.ServingReadinessProbe)
	if raw, err := redactedJSON(probes); err == nil {
		value = raw
	}
	s := setting{Value: value, Source: source}
	if cfg.EnableMultiContainerProbes {
		s.Note = "all must pass: the user container's, then the sidecars' (ENABLE_MULTI_CONTAINER_PROBES)"
	}
	return s
}

// tracing is the span exporter, where it sends, how it samples.
func (d docContext) tracing() object {
	t := d.c.tracing
	oc := d.c.obs.config.Tracing
	var out object
	if t.exporter == "" {
		out.add("exporter", setting{Value: off, Source: d.tracingExporterSource()})
		return out
	}
	out.add("exporter", setting{Value: t.exporter, Source: d.tracingExporterSource()})
	fromObs := d.tracingFromObservabilityConfig()
	switch {
	case d.c.traceOTLP != nil:
		out.add("endpoint", setting{Value: redactString(d.c.traceOTLP.URL()), Source: startupSource(d.c.traceOTLP.EndpointSource)})
	case t.exporter == tracingZipkin && fromObs:
		out.add("endpoint", setting{Value: redactString(t.endpoint), Source: d.obsSource("tracing.endpoint")})
	case t.exporter == tracingZipkin:
		out.add("endpoint", setting{Value: redactString(t.endpoint), Source: d.envSource("TRACING_CONFIG_ZIPKIN_ENDPOINT")})
	case t.exporter == tracingStdout:
		out.add("endpoint", setting{Value: "stdout", Source: d.tracingExporterSource()})
	}

	switch {
	case t.exporter == tracingStdout:
		out.add("sampler", setting{Value: "AlwaysOnSampler", Source: d.tracingExporterSource(), Note: "stdout samples every request"})
	case fromObs:
		_, desc, _ := sampling.FromConfig(oc.SamplingRate, d.c.getenv) // resolveTracing accepted it
		out.add("sampler", setting{Value: desc, Source: firstSource(d.nonEmptyEnvSource(sampling.EnvSampler),
			d.nonEmptyEnvSource(sampling.EnvSamplerArg), d.obsSource("tracing.samplingRate"))})
	case d.c.cfg.TracingConfigDebug:
		out.add("sampler", setting{Value: "AlwaysSample", Source: d.envSource("TRACING_CONFIG_DEBUG")})
	default:
		rate := strconv.FormatFloat(d.c.cfg.TracingConfigSampleRate, 'g', -1, 64)
		out.add("sampler", setting{Value: "ProbabilitySampler{" + rate + "}", Source: d.envSource("TRACING_CONFIG_SAMPLE_RATE")})
	}
	if d.c.traceOTLP != nil {
		out.add("otlp", d.otlpSettings(*d.c.traceOTLP, "TRACES"))
		out.add("batch", d.batchSettings(d.c.traceBatch))
	}
	return out
}

// tracingFromObservabilityConfig reports whether OBSERVABILITY_CONFIG's
// tracing is in force, by resolveTracing's rules (the 1.15 variables apply
// otherwise).
func (d docContext) tracingFromObservabilityConfig() bool {
	oc := d.c.obs.config.Tracing
	switch oc.Protocol {
	case "", ProtocolNone:
		return false
	case tracingZipkin:
		return checkZipkinEndpoint(oc.Endpoint) == nil
	}
	return true
}

// tracingExporterSource says what chose the span exporter, or chose none.
func (d docContext) tracingExporterSource() string {
	switch {
	case d.tracingFromObservabilityConfig():
		return d.obsSource("tracing.protocol")
	case d.c.tracing.exporter != "":
		return d.envSource("TRACING_CONFIG_BACKEND")
	}
	return firstSource(d.obsSource("tracing.protocol"), d.envSource("TRACING_CONFIG_BACKEND"))
}

// nonEmptyEnvSource is envSource for a variable that counts only when not
// empty.
func (d docContext) nonEmptyEnvSource(name string) string {
	if d.c.getenv(name) == "" {
		return sourceDefault
	}
	return "env:" + name
}

// otlpEnvSource is the source of an OTLP exporter setting: the per-signal
// variable, else the general one, else the default (values trimmed, empty
// counts as unset, as otlp.ResolveConfig reads them).
func (d docContext) otlpEnvSource(signal, key string) string {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_" + key, "OTEL_EXPORTER_OTLP_" + key} {
		if strings.TrimSpace(d.c.getenv(name)) != "" {
			return "env:" + name
		}
	}
	return sourceDefault
}

// otlpSettings are an OTLP exporter's settings besides its endpoint; every
// header value is redacted.
func (d docContext) otlpSettings(c otlp.Config, signal string) object {
	var out object
	out.add("compression", setting{Value: string(c.Compression), Source: d.otlpEnvSource(signal, "COMPRESSION")})
	out.add("timeout", setting{Value: c.Timeout.String(), Source: d.otlpEnvSource(signal, "TIMEOUT")})
	var headers object
	for _, h := range c.Headers {
		headers.add(h.Name, redacted)
	}
	if headers == nil {
		headers = object{}
	}
	out.add("headers", setting{Value: headers, Source: d.otlpEnvSource(signal, "HEADERS")})
	if c.CertificateFile != "" {
		out.add("certificate", setting{Value: c.CertificateFile, Source: d.otlpEnvSource(signal, "CERTIFICATE")})
	}
	if c.ClientCertificateFile != "" {
		out.add("clientCertificate", setting{Value: c.ClientCertificateFile, Source: d.otlpEnvSource(signal, "CLIENT_CERTIFICATE")})
		out.add("clientKey", setting{Value: c.ClientKeyFile, Source: d.otlpEnvSource(signal, "CLIENT_KEY")})
	}
	return out
}

// batchSettings are the batch span processor's settings (OTEL_BSP_*).
func (d docContext) batchSettings(c spanbatch.Config) object {
	timeout := c.ExportTimeout.String()
	if c.ExportTimeout < 0 {
		timeout = "none"
	}
	var out object
	out.add("maxQueueSize", setting{Value: c.MaxQueueSize, Source: d.nonEmptyEnvSource(spanbatch.EnvMaxQueueSize)})
	out.add("maxExportBatchSize", setting{Value: c.MaxExportBatchSize, Source: d.nonEmptyEnvSource(spanbatch.EnvMaxExportBatchSize)})
	out.add("scheduleDelay", setting{Value: c.ScheduleDelay.String(), Source: d.nonEmptyEnvSource(spanbatch.EnvScheduleDelay)})
	out.add("exportTimeout", setting{Value: timeout, Source: d.nonEmptyEnvSource(spanbatch.EnvExportTimeout)})
	return out
}

// metricsOutputSource says what turned request metrics on, or left them
// off.
func (d docContext) metricsOutputSource() string {
	if d.c.metricsOutput != "" {
		return startupSource(d.c.metricsSource)
	}
	return firstSource(d.envSource("SERVING_REQUEST_METRICS_BACKEND"), d.obsSource("requestMetrics.protocol"))
}

// requestMetrics is where request metrics go.
func (d docContext) requestMetrics() object {
	c := d.c
	var out object
	if c.metricsOutput == "" {
		out.add("output", setting{Value: off, Source: d.metricsOutputSource()})
		return out
	}
	out.add("output", setting{Value: c.metricsOutput, Source: d.metricsOutputSource(), Note: c.obs.gen.Name + " generation's metric names"})
	if c.metricsOTLP == nil { // prometheus: listeners.user-metrics says where
		return out
	}
	out.add("endpoint", setting{Value: redactString(c.metricsOTLP.URL()), Source: startupSource(c.metricsOTLP.EndpointSource)})
	interval := firstSource(d.nonEmptyEnvSource("OTEL_METRIC_EXPORT_INTERVAL"))
	if interval == sourceDefault && c.obs.config.RequestMetrics.ExportInterval > 0 {
		interval = d.obsSource("requestMetrics.exportInterval")
	}
	out.add("exportInterval", setting{Value: c.exportInterval.String(), Source: interval})
	out.add("exportTimeout", setting{Value: c.exportTimeout.String(), Source: d.nonEmptyEnvSource("OTEL_METRIC_EXPORT_TIMEOUT")})
	out.add("otlp", d.otlpSettings(*c.metricsOTLP, "METRICS"))
	return out
}

// requestLog is the request log, by requestLogLayer's rules; a template
// that does not parse leaves it off, as at startup.
func (d docContext) requestLog() object {
	cfg, oc := d.c.cfg, d.c.obs.config
	var out object
	enabled := setting{Value: false, Source: firstSource(d.envSource("SERVING_ENABLE_REQUEST_LOG"), d.obsSource("enableRequestLog"))}
	switch {
	case cfg.ServingEnableRequestLog:
		enabled = setting{Value: true, Source: "env:SERVING_ENABLE_REQUEST_LOG"}
	case oc.EnableRequestLog:
		enabled = setting{Value: true, Source: d.obsSource("enableRequestLog")}
	}
	text, source := oc.RequestLogTemplate, d.obsSource("requestLogTemplate")
	if cfg.ServingRequestLogTemplate != "" {
		text, source = cfg.ServingRequestLogTemplate, "env:SERVING_REQUEST_LOG_TEMPLATE"
	}
	probes := setting{Value: false, Source: firstSource(d.envSource("SERVING_ENABLE_PROBE_REQUEST_LOG"), d.obsSource("enableProbeRequestLog"))}
	switch {
	case cfg.ServingEnableProbeRequestLog:
		probes = setting{Value: true, Source: "env:SERVING_ENABLE_PROBE_REQUEST_LOG"}
	case oc.EnableProbeRequestLog:
		probes = setting{Value: true, Source: d.obsSource("enableProbeRequestLog")}
	}
	if enabled.Value == true {
		getter := pkghttp.RequestLogTemplateInputGetterFromRevision(&pkghttp.RequestLogRevision{})
		if _, err := pkghttp.NewRequestLogHandler(http.NotFoundHandler(), nil, text, getter, false); err != nil {
			enabled.Value, enabled.Note = false, "the template does not parse, so startup turns the request log off: "+err.Error()
		}
	}
	out.add("enabled", enabled)
	out.add("template", setting{Value: redactString(text), Source: source})
	out.add("probeRequests", probes)
	return out
}

// profiling is whether pprof is served.
func (d docContext) profiling() setting {
	switch {
	case d.c.cfg.EnableProfiling:
		return setting{Value: true, Source: "env:ENABLE_PROFILING"}
	case d.c.obs.config.Runtime.Profiling == ProfilingEnabled:
		return setting{Value: true, Source: d.obsSource("runtime.profiling")}
	}
	return setting{Value: false, Source: firstSource(d.envSource("ENABLE_PROFILING"), d.obsSource("runtime.profiling"))}
}
