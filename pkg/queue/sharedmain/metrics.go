package sharedmain

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
	"k8s.io/utils/clock"

	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

// metricsHooks is what request metrics add to queue-proxy (CONTRACT.md
// §5.3): layers for the chain and a transport wrapper (nil when off), extra
// servers (:9091) and a flush at exit (the final OTLP export).
type metricsHooks struct {
	requestMetrics layer                                     // outside the timeout handler: 1.15 revision_request_*, newest http.server.*
	appMetrics     layer                                     // inside the breaker: 1.15 revision_app_request_*, newest kn.serving.invocation.duration
	wrapTransport  func(http.RoundTripper) http.RoundTripper // newest http.client.*
	clientMetrics  *pkgobs.ClientRecorder                    // the same, for the lean upstream path; nil: none
	servers        []server
	flush          func()
}

// metricsEnv holds the variables that place the user-metrics server and
// time the OTLP export. Knative reads them with os.Getenv, so an empty
// value counts as unset; they are read only when request metrics are on.
type metricsEnv struct {
	PrometheusHost string `envconfig:"METRICS_PROMETHEUS_HOST" desc:"Host or IP the request-metrics (Prometheus) server listens on; empty: all interfaces. Beats the host of OBSERVABILITY_CONFIG requestMetrics.endpoint."`
	PrometheusPort string `envconfig:"METRICS_PROMETHEUS_PORT" desc:"Port of the request-metrics (Prometheus) server, 1024-65535; empty: 9091, or the port of OBSERVABILITY_CONFIG requestMetrics.endpoint, which this beats. Any other value is a startup error."`
	ExportInterval string `envconfig:"OTEL_METRIC_EXPORT_INTERVAL" desc:"OTLP request metrics: milliseconds between exports; beats OBSERVABILITY_CONFIG requestMetrics.exportInterval. Unset and no exportInterval: 60000. Not a positive integer: startup error."`
	ExportTimeout  string `envconfig:"OTEL_METRIC_EXPORT_TIMEOUT" desc:"OTLP request metrics: milliseconds one export may take, retries included; default 30000. Not a positive integer: startup error."`
}

func init() { envSpecs = append(envSpecs, metricsEnv{}) }

const (
	// serverUserMetrics names the request-metrics server in the log and in
	// tests.
	serverUserMetrics = "user-metrics"

	// defaultUserMetricsPort is Knative's Prometheus port for user metrics.
	defaultUserMetricsPort = "9091"

	// userMetricsHeaderTimeout bounds a scrape's request headers.
	userMetricsHeaderTimeout = 5 * time.Second

	// The OpenTelemetry SDK's periodic reader: export interval and timeout.
	defaultExportInterval = time.Minute
	defaultExportTimeout  = 30 * time.Second
	// finalExportTimeout bounds the export at exit, as Knative bounds its
	// providers' shutdown.
	finalExportTimeout = 10 * time.Second

	// Request-metric outputs: the 1.15 SERVING_REQUEST_METRICS_BACKEND and
	// the newest requestMetrics.protocol values.
	metricsBackendOpenCensus    = "opencensus"
	metricsProtocolGRPC         = "grpc"
	metricsProtocolHTTPProtobuf = "http/protobuf"
)

// setupMetrics builds the request metrics in the generation's names when
// either generation's variable asks for an output we serve, and the
// user-metrics server (already listening) or the OTLP exporter. Bad ports,
// endpoints and OTEL_* values are startup errors, as in Knative; an
// unsupported or unknown backend only turns request metrics off, with a
// warning.
func setupMetrics(cfg *config, obs observability, env Env, logger *zap.SugaredLogger, breaker *queue.Breaker) (metricsHooks, error) {
	return newMetricsHooks(cfg, obs, env, logger, breaker, clock.RealClock{})
}

func newMetricsHooks(cfg *config, obs observability, env Env, logger *zap.SugaredLogger, breaker *queue.Breaker, clk clock.WithTicker) (metricsHooks, error) {
	off := metricsHooks{flush: func() {}}
	output, source, warnings := metricsOutput(obs.gen, cfg.ServingRequestMetricsBackend, obs.config.RequestMetrics.Protocol)
	for _, w := range warnings {
		logger.Warn(w)
	}
	if output == "" {
		return off, nil
	}

	var menv metricsEnv
	if err := envconfig.Process("", &menv); err != nil {
		return off, err
	}
	gen := obs.gen
	mc := pkgobs.MetricsConfig{
		Generation:     gen,
		Namespace:      env.ServingNamespace,
		Service:        env.ServingService,
		Configuration:  env.ServingConfiguration,
		Revision:       env.ServingRevision,
		Pod:            env.ServingPod,
		RouteTag:       routeTagFunc(gen.RouteTag),
		MemStatsPeriod: obs.config.Runtime.ExportInterval,
		Clock:          clk,
	}
	if breaker != nil {
		mc.QueueDepth = breaker.InFlight
	}
	if gen.Exposition == pkgobs.ExpositionOTel {
		res, err := pkgobs.NewResource(resourceInput(env))
		if err != nil {
			logger.Warnw("Ignoring part of OTEL_RESOURCE_ATTRIBUTES", zap.Error(err))
		}
		mc.Resource, mc.ResourceSchemaURL = res, pkgobs.ResourceSchemaURL
		addRuntimeMetrics(&mc, obs, output == ProtocolPrometheus)
	}

	if output == ProtocolPrometheus {
		return prometheusHooks(obs, mc, menv, source, logger)
	}
	return otlpHooks(obs, mc, menv, output, source, logger, clk)
}

// prometheusHooks serves the metrics on the user-metrics port.
func prometheusHooks(obs observability, mc pkgobs.MetricsConfig, menv metricsEnv, source string, logger *zap.SugaredLogger) (metricsHooks, error) {
	off := metricsHooks{flush: func() {}}
	addr, err := userMetricsAddr(obs.config.RequestMetrics.Endpoint, menv)
	if err != nil {
		return off, err
	}
	tlsCfg, stopTLS, err := userMetricsTLS(logger)
	if err != nil {
		return off, err
	}
	m, err := pkgobs.NewMetrics(mc)
	if err != nil {
		stopTLS()
		return off, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		m.Stop()
		stopTLS()
		return off, errors.New("server " + serverUserMetrics + ": " + err.Error())
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: userMetricsHeaderTimeout,
		MaxHeaderBytes:    internalMaxHeaderBytes,
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		srv.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
	}
	logger.Infof("Request metrics on (%s), %s generation: Prometheus text format at %s://%s/metrics", source, mc.Generation.Name, scheme, ln.Addr())
	return metricsHooks{
		requestMetrics: m.RequestHandler,
		appMetrics:     m.AppHandler,
		wrapTransport:  m.Transport,
		clientMetrics:  m.ClientRecorder(),
		servers:        []server{{name: serverUserMetrics, srv: srv, ln: ln}},
		flush: func() {
			m.Stop()
			ln.Close() // when run failed before serving; otherwise already closed
			stopTLS()
		},
	}, nil
}

// otlpHooks pushes the metrics to an OpenTelemetry collector.
func otlpHooks(obs observability, mc pkgobs.MetricsConfig, menv metricsEnv, protocol, source string, logger *zap.SugaredLogger, clk clock.WithTicker) (metricsHooks, error) {
	off := metricsHooks{flush: func() {}}
	ocfg, err := otlp.ResolveConfig(otlp.Metrics, protocol, obs.config.RequestMetrics.Endpoint, os.Getenv)
	if err != nil {
		return off, err
	}
	interval, err := exportInterval(obs.config.RequestMetrics.ExportInterval, menv.ExportInterval)
	if err != nil {
		return off, err
	}
	timeout := defaultExportTimeout
	if menv.ExportTimeout != "" {
		if timeout, err = positiveMillis("OTEL_METRIC_EXPORT_TIMEOUT", menv.ExportTimeout); err != nil {
			return off, err
		}
	}
	client, err := otlp.NewClient(ocfg)
	if err != nil {
		return off, err
	}
	m, err := pkgobs.NewMetrics(mc)
	if err != nil {
		client.Close()
		return off, err
	}
	logger.Infof("Request metrics on (%s), %s generation: OTLP export every %v to %s", source, mc.Generation.Name, interval, ocfg)
	pusher := pkgobs.StartPush(pkgobs.PushConfig{
		Collect:  m.Collect,
		Encode:   otlp.AppendMetricsRequest,
		Export:   client.Export,
		Interval: interval,
		Timeout:  timeout,
		OnError:  func(err error) { logger.Warnw("Failed to export request metrics", zap.Error(err)) },
		Clock:    clk,
	})
	return metricsHooks{
		requestMetrics: m.RequestHandler,
		appMetrics:     m.AppHandler,
		wrapTransport:  m.Transport,
		clientMetrics:  m.ClientRecorder(),
		flush: func() {
			ctx, cancel := context.WithTimeout(context.Background(), finalExportTimeout)
			defer cancel()
			if err := pusher.Shutdown(ctx); err != nil {
				logger.Warnw("Failed to export request metrics at exit", zap.Error(err))
			}
			m.Stop()
			client.Close()
		},
	}, nil
}

// exportInterval is OTEL_METRIC_EXPORT_INTERVAL (milliseconds) if set, else
// requestMetrics.exportInterval if positive, else the SDK's 60 s.
func exportInterval(configured time.Duration, env string) (time.Duration, error) {
	if env != "" {
		return positiveMillis("OTEL_METRIC_EXPORT_INTERVAL", env)
	}
	if configured > 0 {
		return configured, nil
	}
	return defaultExportInterval, nil
}

// positiveMillis parses a positive number of milliseconds.
func positiveMillis(name, v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > int64(time.Duration(1<<62)/time.Millisecond) {
		return 0, errors.New(name + ": " + strconv.Quote(v) + " is not a positive number of milliseconds")
	}
	return time.Duration(n) * time.Millisecond, nil
}

// routeTagFunc returns the route tag of a request in a generation's values.
func routeTagFunc(v pkgobs.RouteTagValues) func(*http.Request) string {
	return func(r *http.Request) string { return queue.RouteTagName(r, v.Disabled, v.Default, v.Undefined) }
}

// resourceInput is the resource's input from the revision and the
// variables the OpenTelemetry SDK reads (CONTRACT.md §1b, §5.2).
func resourceInput(env Env) pkgobs.ResourceInput {
	pod := os.Getenv("POD_NAME")
	if pod == "" {
		pod = os.Getenv("HOSTNAME")
	}
	return pkgobs.ResourceInput{
		Namespace:     env.ServingNamespace,
		Service:       env.ServingService,
		Configuration: env.ServingConfiguration,
		Revision:      env.ServingRevision,
		PodName:       pod,
		ServiceName:   os.Getenv("OTEL_SERVICE_NAME"),
		Attributes:    os.Getenv("OTEL_RESOURCE_ATTRIBUTES"),
	}
}

// metricsOutput decides where request metrics go: "" (off), prometheus,
// grpc or http/protobuf. Either generation's variable turns them on:
// SERVING_REQUEST_METRICS_BACKEND (1.15) or OBSERVABILITY_CONFIG
// requestMetrics.protocol (newest); when both do, the variable of the
// generation in force wins. The generation decides the names, not the
// output, except that OTLP export exists only in the newest generation.
// Values other than "", "none", "prometheus" and, newest, "grpc" and
// "http/protobuf" yield a warning and no output from that variable:
// opencensus (1.15) needs an OpenCensus agent we do not export to; anything
// else is unknown (Knative 1.15 logs an exporter error and serves on
// without request metrics; the newest Knative refuses to start, which we do
// not copy: a typo in an observability setting should not stop a
// revision's pods).
func metricsOutput(gen *pkgobs.Generation, backend115, protocol string) (output, source string, warnings []string) {
	type setting struct{ name, value string }
	settings := []setting{
		{"SERVING_REQUEST_METRICS_BACKEND", backend115},
		{"OBSERVABILITY_CONFIG requestMetrics.protocol", protocol},
	}
	otlpOK := gen.Exposition == pkgobs.ExpositionOTel
	if otlpOK {
		settings[0], settings[1] = settings[1], settings[0]
	}
	supported := `"prometheus"`
	if otlpOK {
		supported = `"prometheus", "grpc" or "http/protobuf"`
	}
	var bad []setting
	for _, s := range settings {
		switch s.value {
		case "", ProtocolNone:
		case ProtocolPrometheus:
			if output == "" {
				output, source = s.value, s.name+"="+s.value
			}
		case metricsProtocolGRPC, metricsProtocolHTTPProtobuf:
			if otlpOK && s.name != "SERVING_REQUEST_METRICS_BACKEND" {
				if output == "" {
					output, source = s.value, s.name+"="+s.value
				}
				continue
			}
			bad = append(bad, s)
		default:
			bad = append(bad, s)
		}
	}
	for _, s := range bad {
		var what string
		switch s.value {
		case metricsBackendOpenCensus, metricsProtocolGRPC, metricsProtocolHTTPProtobuf:
			what = s.name + "=" + strconv.Quote(s.value) + " is not supported in the " + gen.Name + " generation (only " + supported + " is)"
		default:
			what = s.name + "=" + strconv.Quote(s.value) + " is not a known request-metrics backend (use " + supported + " or " + strconv.Quote(ProtocolNone) + ")"
		}
		if output != "" {
			warnings = append(warnings, what+"; it is ignored, request metrics are on because of "+source)
		} else {
			warnings = append(warnings, what+": request metrics are off")
		}
	}
	return output, source, warnings
}

// userMetricsAddr is where the user-metrics server listens: ":9091", or the
// requestMetrics.endpoint of OBSERVABILITY_CONFIG ("host:port"); then
// METRICS_PROMETHEUS_HOST and METRICS_PROMETHEUS_PORT, when not empty,
// replace the host and the port (env beats the endpoint, as in Knative).
// The variable's port must be 1024-65535, as Knative requires; the
// endpoint's may be any port, 0 included (the system picks one).
func userMetricsAddr(endpoint string, env metricsEnv) (string, error) {
	host, port := "", defaultUserMetricsPort
	if endpoint != "" {
		h, p, err := net.SplitHostPort(endpoint)
		if err != nil {
			return "", errors.New("OBSERVABILITY_CONFIG requestMetrics.endpoint " + strconv.Quote(endpoint) + " is not host:port: " + err.Error())
		}
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return "", errors.New("OBSERVABILITY_CONFIG requestMetrics.endpoint " + strconv.Quote(endpoint) + ": " + strconv.Quote(p) + " is not a port number (0-65535)")
		}
		host, port = h, p
	}
	if env.PrometheusHost != "" {
		host = env.PrometheusHost
	}
	if env.PrometheusPort != "" {
		n, err := strconv.Atoi(env.PrometheusPort)
		if err != nil || n < 1024 || n > 65535 {
			return "", errors.New("METRICS_PROMETHEUS_PORT: " + strconv.Quote(env.PrometheusPort) + " is not a port number in 1024-65535")
		}
		port = env.PrometheusPort
	}
	return net.JoinHostPort(host, port), nil
}
