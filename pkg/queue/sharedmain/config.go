package sharedmain

import (
	"errors"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// config is everything queue-proxy reads from its environment through
// envconfig. It holds the variables of both Knative generations
// (CONTRACT.md §1a, §1d) and our own extensions (prefix QP_). Semantics follow
// envconfig, as Knative's do: "required" means present (an empty string is
// accepted), and any present value must parse for its type (an empty int or a
// bool that strconv.ParseBool rejects is an error).
//
// Variables Knative sets but queue-proxy does not use (HOST_IP, ROOT_CA,
// SYSTEM_NAMESPACE) are simply not read.
type config struct {
	// Identity of the revision and pod (§1a).
	ServingNamespace     string `envconfig:"SERVING_NAMESPACE" required:"true" desc:"Namespace of the revision: log key knative.dev/key, request log."`
	ServingService       string `envconfig:"SERVING_SERVICE" desc:"Knative Service that owns the revision; request log and Env. Empty when there is none."`
	ServingConfiguration string `envconfig:"SERVING_CONFIGURATION" required:"true" desc:"Configuration that owns the revision; request log and Env. May be empty."`
	ServingRevision      string `envconfig:"SERVING_REVISION" required:"true" desc:"Revision name: log key knative.dev/key, request log."`
	ServingPod           string `envconfig:"SERVING_POD" required:"true" desc:"Pod name (Knative: fieldRef metadata.name): pod_name in the autoscaler stats, log field knative.dev/pod."`
	ServingPodIP         string `envconfig:"SERVING_POD_IP" required:"true" desc:"Pod IP (Knative: fieldRef status.podIP): serverIp in the request log."`

	// Serving (§1a).
	ContainerConcurrency                int    `envconfig:"CONTAINER_CONCURRENCY" required:"true" desc:"Requests let through to the user container at once. 0 = unlimited; N = N in flight and up to 10×N queued in arrival order, then 503."`
	QueueServingPort                    string `envconfig:"QUEUE_SERVING_PORT" required:"true" desc:"Main listener: HTTP/1.1 and h2c (Knative: 8012; 8013 for h2c revisions)."`
	QueueServingTLSPort                 string `envconfig:"QUEUE_SERVING_TLS_PORT" required:"true" desc:"TLS listener, started only when tls.crt and tls.key exist in /var/lib/knative/certs (Knative: 8112)."`
	UserPort                            string `envconfig:"USER_PORT" required:"true" desc:"Port of the user container; requests go to 127.0.0.1:USER_PORT."`
	RevisionTimeoutSeconds              int    `envconfig:"REVISION_TIMEOUT_SECONDS" required:"true" desc:"Overall request timeout in seconds. 0 makes every request time out at once, as in Knative."`
	RevisionResponseStartTimeoutSeconds int    `envconfig:"REVISION_RESPONSE_START_TIMEOUT_SECONDS" desc:"Longest wait for the first response byte, in seconds; 0 = off."`
	RevisionIdleTimeoutSeconds          int    `envconfig:"REVISION_IDLE_TIMEOUT_SECONDS" desc:"Longest gap between response writes, in seconds; 0 = off."`
	ServingReadinessProbe               string `envconfig:"SERVING_READINESS_PROBE" desc:"Readiness probe of the user container as corev1.Probe JSON (a JSON array with ENABLE_MULTI_CONTAINER_PROBES); empty = always ready."`
	EnableHTTPFullDuplex                bool   `envconfig:"ENABLE_HTTP_FULL_DUPLEX" desc:"Let the user container read the request body after it started the response (HTTP/1.1)."`
	EnableHTTP2AutoDetection            bool   `envconfig:"ENABLE_HTTP2_AUTO_DETECTION" desc:"HTTP readiness probes try h2c first and fall back to HTTP/1.1."`
	EnableMultiContainerProbes          bool   `envconfig:"ENABLE_MULTI_CONTAINER_PROBES" desc:"SERVING_READINESS_PROBE is a JSON array: the user container's probe, then the sidecars'."`

	// Logging (§1a).
	ServingLoggingConfig string `envconfig:"SERVING_LOGGING_CONFIG" required:"true" desc:"zap logger config as JSON (Knative: zap-logger-config of config-logging); empty or invalid = JSON lines on stderr."`
	ServingLoggingLevel  string `envconfig:"SERVING_LOGGING_LEVEL" required:"true" desc:"Log level: debug, info, warn, error, ...; empty = the level of SERVING_LOGGING_CONFIG."`

	// Knative 1.15 observability variables (§1d); all optional.
	EnableProfiling                             bool    `envconfig:"ENABLE_PROFILING" desc:"Knative 1.15: serve pprof on PROFILING_PORT."`
	ServingRequestLogTemplate                   string  `envconfig:"SERVING_REQUEST_LOG_TEMPLATE" desc:"Knative 1.15: Go text/template of one request-log line."`
	ServingEnableRequestLog                     bool    `envconfig:"SERVING_ENABLE_REQUEST_LOG" desc:"Knative 1.15: write one request-log line per request."`
	ServingEnableProbeRequestLog                bool    `envconfig:"SERVING_ENABLE_PROBE_REQUEST_LOG" desc:"Knative 1.15: log probe requests too."`
	ServingRequestMetricsBackend                string  `envconfig:"SERVING_REQUEST_METRICS_BACKEND" desc:"Knative 1.15: request metrics backend: prometheus (served on 9091), opencensus, or none/empty."`
	ServingRequestMetricsReportingPeriodSeconds int     `envconfig:"SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS" desc:"Knative 1.15: request metrics reporting period, in seconds."`
	MetricsCollectorAddress                     string  `envconfig:"METRICS_COLLECTOR_ADDRESS" desc:"Knative 1.15: OpenCensus agent address, for the opencensus backend."`
	MetricsDomain                               string  `envconfig:"METRICS_DOMAIN" desc:"Knative 1.15: metrics domain, for the opencensus backend."`
	TracingConfigBackend                        string  `envconfig:"TRACING_CONFIG_BACKEND" desc:"Knative 1.15: none or zipkin. Unset counts as enabled, as in Knative."`
	TracingConfigZipkinEndpoint                 string  `envconfig:"TRACING_CONFIG_ZIPKIN_ENDPOINT" desc:"Knative 1.15: Zipkin collector URL."`
	TracingConfigDebug                          bool    `envconfig:"TRACING_CONFIG_DEBUG" desc:"Knative 1.15: trace every request."`
	TracingConfigSampleRate                     float64 `envconfig:"TRACING_CONFIG_SAMPLE_RATE" desc:"Knative 1.15: fraction of requests traced, 0 to 1."`

	// Newest-generation variables read directly in Knative (§1b).
	ObservabilityConfig string `envconfig:"OBSERVABILITY_CONFIG" desc:"Newest generation: tracing, request metrics, request log and profiling as JSON (fields below). Malformed JSON = exit 1."`
	ProfilingPort       string `envconfig:"PROFILING_PORT" default:"8008" desc:"pprof listener, when profiling is on."`

	// Which generation's observability outputs to produce.
	ObservabilityGeneration string `envconfig:"QP_OBSERVABILITY_GENERATION" default:"auto" desc:"Ours: whose observability outputs (metric names, units, labels, export protocols) queue-proxy produces: auto (the newest Knative's when OBSERVABILITY_CONFIG is set and not empty, else Knative 1.15's), 1.15 or newest. Anything else: startup error."`

	// Our extensions. Knative hard-codes these; operators and tests asked
	// for them to be configurable. Defaults are Knative's values.
	DrainQuietPeriod   time.Duration `envconfig:"QP_DRAIN_QUIET_PERIOD" default:"30s" desc:"Ours (Knative: fixed 30s): after SIGTERM, the drain ends once no request arrived for this long."`
	HijackDrainTimeout time.Duration `envconfig:"QP_HIJACK_DRAIN_TIMEOUT" default:"60s" desc:"Ours (Knative: fixed 60s): after shutdown, how long websockets and other hijacked connections get to finish."`
	AdminPort          string        `envconfig:"QP_ADMIN_PORT" default:"8022" desc:"Ours (Knative: fixed 8022): /wait-for-drain, for the user container's preStop hook."`
	MetricsPort        string        `envconfig:"QP_METRICS_PORT" default:"9090" desc:"Ours (Knative: fixed 9090): autoscaler /metrics (protobuf Stat)."`
	ServerPath         string        `envconfig:"QP_SERVER_PATH" default:"auto" desc:"Ours: auto (the main port serves plain HTTP/1.1 requests with the fast-path server and hands every other connection to net/http's; see Server paths) or generic (net/http's serves every connection). Full-duplex mode takes generic. Anything else: startup error."`
	UpstreamPath       string        `envconfig:"QP_UPSTREAM_PATH" default:"auto" desc:"Ours: auto (plain HTTP/1.1 requests to the user container take the lean path, the rest net/http's ReverseProxy and Transport; see Upstream paths) or generic (every request through net/http's). Anything else: startup error."`

	// The debug listener (debug.go); ours.
	DebugAddress string `envconfig:"QP_DEBUG_ADDRESS" default:"127.0.0.1:8023" desc:"Ours: host:port of the debug listener (/debug/config: the resolved configuration as JSON; see Debugging). The default is loopback only, reached with kubectl port-forward; :8023 listens on every interface; off: no listener; empty means the default. The host must be empty, an IP address or localhost; anything else is a startup error. A port already in use only logs a warning."`
}

// envSpecs lists every struct that queue-proxy fills from its environment
// with envconfig: config, plus the env structs that features keep in their
// own files (TLS, metrics, tracing), which add themselves in an init func.
// The operator's reference in the README is checked against this list.
var envSpecs = []any{config{}}

// loadConfig reads and validates the environment. Its errors name the
// variable at fault; Main prints them to stderr and exits 1.
func loadConfig() (*config, error) {
	var c config
	if err := envconfig.Process("", &c); err != nil {
		return nil, err
	}
	return &c, c.validate()
}

// validate rejects values that would only fail later, less clearly. Knative
// discovers a bad port when it listens; we say which variable is wrong.
func (c *config) validate() error {
	ports := []struct{ name, value string }{
		{"QUEUE_SERVING_PORT", c.QueueServingPort},
		{"QUEUE_SERVING_TLS_PORT", c.QueueServingTLSPort},
		{"USER_PORT", c.UserPort},
		{"PROFILING_PORT", c.ProfilingPort},
		{"QP_ADMIN_PORT", c.AdminPort},
		{"QP_METRICS_PORT", c.MetricsPort},
	}
	var errs []error
	for _, p := range ports {
		if n, err := strconv.Atoi(p.value); err != nil || n < 0 || n > 65535 {
			errs = append(errs, errors.New(p.name+": "+strconv.Quote(p.value)+" is not a port number (0-65535)"))
		}
	}
	for _, d := range []struct {
		name  string
		value int
	}{
		{"REVISION_TIMEOUT_SECONDS", c.RevisionTimeoutSeconds},
		{"REVISION_RESPONSE_START_TIMEOUT_SECONDS", c.RevisionResponseStartTimeoutSeconds},
		{"REVISION_IDLE_TIMEOUT_SECONDS", c.RevisionIdleTimeoutSeconds},
	} {
		if d.value < 0 {
			errs = append(errs, errors.New(d.name+": "+strconv.Itoa(d.value)+" is negative"))
		}
	}
	switch c.ObservabilityGeneration {
	case "", generationAuto, generation115, generationNewest:
	default:
		errs = append(errs, errors.New("QP_OBSERVABILITY_GENERATION: "+strconv.Quote(c.ObservabilityGeneration)+" is not auto, 1.15 or newest"))
	}
	switch c.ServerPath {
	case "", upstreamAuto, upstreamGeneric:
	default:
		errs = append(errs, errors.New("QP_SERVER_PATH: "+strconv.Quote(c.ServerPath)+" is not auto or generic"))
	}
	switch c.UpstreamPath {
	case "", upstreamAuto, upstreamGeneric:
	default:
		errs = append(errs, errors.New("QP_UPSTREAM_PATH: "+strconv.Quote(c.UpstreamPath)+" is not auto or generic"))
	}
	if c.DrainQuietPeriod <= 0 {
		errs = append(errs, errors.New("QP_DRAIN_QUIET_PERIOD: must be positive, got "+c.DrainQuietPeriod.String()))
	}
	if c.HijackDrainTimeout < 0 {
		errs = append(errs, errors.New("QP_HIJACK_DRAIN_TIMEOUT: must not be negative, got "+c.HijackDrainTimeout.String()))
	}
	if err := checkDebugAddress(c.DebugAddress); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// timeouts returns the revision's overall, response-start and idle timeouts.
func (c *config) timeouts() (overall, responseStart, idle time.Duration) {
	return time.Duration(c.RevisionTimeoutSeconds) * time.Second,
		time.Duration(c.RevisionResponseStartTimeoutSeconds) * time.Second,
		time.Duration(c.RevisionIdleTimeoutSeconds) * time.Second
}

// env is the public, read-only view of the identity variables (§8).
func (c *config) env() Env {
	return Env{
		ServingNamespace:     c.ServingNamespace,
		ServingService:       c.ServingService,
		ServingConfiguration: c.ServingConfiguration,
		ServingRevision:      c.ServingRevision,
		ServingPod:           c.ServingPod,
		ServingPodIP:         c.ServingPodIP,
	}
}
