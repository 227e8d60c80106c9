package sharedmain

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
	"k8s.io/utils/clock"

	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

// metricsHooks is what request metrics add to queue-proxy (CONTRACT.md
// §5.3): layers for the chain (nil when off), extra servers (:9091) and a
// flush at exit.
type metricsHooks struct {
	requestMetrics layer // outside the timeout handler: revision_request_*
	appMetrics     layer // inside the breaker: revision_app_request_*, queue depth
	servers        []server
	flush          func()
}

// metricsEnv holds the variables that place the user-metrics server. Knative
// reads them with os.Getenv, so an empty value counts as unset; they are
// read only when request metrics are on.
type metricsEnv struct {
	PrometheusHost string `envconfig:"METRICS_PROMETHEUS_HOST" desc:"Host or IP the request-metrics (Prometheus) server listens on; empty: all interfaces. Beats the host of OBSERVABILITY_CONFIG requestMetrics.endpoint."`
	PrometheusPort string `envconfig:"METRICS_PROMETHEUS_PORT" desc:"Port of the request-metrics (Prometheus) server, 1024-65535; empty: 9091, or the port of OBSERVABILITY_CONFIG requestMetrics.endpoint, which this beats. Any other value is a startup error."`
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

	// Request-metric backends we know but do not export to: the 1.15
	// SERVING_REQUEST_METRICS_BACKEND value and the newest
	// requestMetrics.protocol (OTLP) values.
	metricsBackendOpenCensus    = "opencensus"
	metricsProtocolGRPC         = "grpc"
	metricsProtocolHTTPProtobuf = "http/protobuf"
)

// setupMetrics builds the request metrics when either generation asks for
// Prometheus (metricsBackend), and the user-metrics server, already
// listening. A bad port is a startup error, as in Knative; an unsupported or
// unknown backend only turns request metrics off, with a warning.
func setupMetrics(cfg *config, obs observability, env Env, logger *zap.SugaredLogger, breaker *queue.Breaker) (metricsHooks, error) {
	return newMetricsHooks(cfg, obs, env, logger, breaker, clock.RealClock{})
}

func newMetricsHooks(cfg *config, obs observability, env Env, logger *zap.SugaredLogger, breaker *queue.Breaker, clk clock.WithTicker) (metricsHooks, error) {
	off := metricsHooks{flush: func() {}}
	on, source, warnings := metricsBackend(cfg.ServingRequestMetricsBackend, obs.config.RequestMetrics.Protocol)
	for _, w := range warnings {
		logger.Warn(w)
	}
	if !on {
		return off, nil
	}

	var menv metricsEnv
	if err := envconfig.Process("", &menv); err != nil {
		return off, err
	}
	addr, err := userMetricsAddr(obs.config.RequestMetrics.Endpoint, menv)
	if err != nil {
		return off, err
	}

	mc := pkgobs.MetricsConfig{
		Namespace:      env.ServingNamespace,
		Service:        env.ServingService,
		Configuration:  env.ServingConfiguration,
		Revision:       env.ServingRevision,
		Pod:            env.ServingPod,
		RouteTag:       queue.GetRouteTagNameFromRequest,
		MemStatsPeriod: obs.config.Runtime.ExportInterval,
		Clock:          clk,
	}
	if breaker != nil {
		mc.QueueDepth = breaker.InFlight
	}
	m, err := pkgobs.NewMetrics(mc)
	if err != nil {
		return off, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		m.Stop()
		return off, errors.New("server " + serverUserMetrics + ": " + err.Error())
	}
	logger.Infof("Request metrics on (%s): Prometheus text format at http://%s/metrics", source, ln.Addr())
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: userMetricsHeaderTimeout,
		MaxHeaderBytes:    internalMaxHeaderBytes,
	}
	return metricsHooks{
		requestMetrics: m.RequestHandler,
		appMetrics:     m.AppHandler,
		servers:        []server{{name: serverUserMetrics, srv: srv, ln: ln}},
		flush: func() {
			m.Stop()
			ln.Close() // when run failed before serving; otherwise already closed
		},
	}, nil
}

// metricsBackend decides whether request metrics are on. Either generation
// turns them on: SERVING_REQUEST_METRICS_BACKEND=prometheus (1.15) or
// OBSERVABILITY_CONFIG requestMetrics.protocol=prometheus (newest). Both
// produce the same metrics, with the 1.15 OpenCensus names. Values other
// than "", "none" and "prometheus" are not supported and yield a warning:
// opencensus (1.15) and the OTLP protocols grpc and http/protobuf (newest)
// need a collector we do not export to; anything else is unknown (Knative
// 1.15 logs an exporter error and serves on without request metrics; the
// newest Knative refuses to start, which we do not copy: a typo in an
// observability setting should not stop a revision's pods).
func metricsBackend(backend115, protocol string) (on bool, source string, warnings []string) {
	type setting struct{ name, value, supported string }
	settings := []setting{
		{"SERVING_REQUEST_METRICS_BACKEND", backend115, metricsBackendOpenCensus},
		{"OBSERVABILITY_CONFIG requestMetrics.protocol", protocol, metricsProtocolGRPC + ", " + metricsProtocolHTTPProtobuf},
	}
	var bad []setting
	for _, s := range settings {
		switch s.value {
		case "", ProtocolNone:
		case ProtocolPrometheus:
			if !on {
				on, source = true, s.name+"="+s.value
			}
		default:
			bad = append(bad, s)
		}
	}
	for _, s := range bad {
		var what string
		switch s.value {
		case metricsBackendOpenCensus, metricsProtocolGRPC, metricsProtocolHTTPProtobuf:
			what = s.name + "=" + strconv.Quote(s.value) + " is not supported (only " + strconv.Quote(ProtocolPrometheus) + " is)"
		default:
			what = s.name + "=" + strconv.Quote(s.value) + " is not a known request-metrics backend (use " + strconv.Quote(ProtocolPrometheus) + " or " + strconv.Quote(ProtocolNone) + ")"
		}
		if on {
			warnings = append(warnings, what+"; it is ignored, request metrics are on because of "+source)
		} else {
			warnings = append(warnings, what+": request metrics are off")
		}
	}
	return on, source, warnings
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
