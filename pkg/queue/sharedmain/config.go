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
	ServingNamespace     string `envconfig:"SERVING_NAMESPACE" required:"true"`
	ServingService       string `envconfig:"SERVING_SERVICE"`
	ServingConfiguration string `envconfig:"SERVING_CONFIGURATION" required:"true"`
	ServingRevision      string `envconfig:"SERVING_REVISION" required:"true"`
	ServingPod           string `envconfig:"SERVING_POD" required:"true"`
	ServingPodIP         string `envconfig:"SERVING_POD_IP" required:"true"`

	// Serving (§1a).
	ContainerConcurrency                int    `envconfig:"CONTAINER_CONCURRENCY" required:"true"`
	QueueServingPort                    string `envconfig:"QUEUE_SERVING_PORT" required:"true"`
	QueueServingTLSPort                 string `envconfig:"QUEUE_SERVING_TLS_PORT" required:"true"`
	UserPort                            string `envconfig:"USER_PORT" required:"true"`
	RevisionTimeoutSeconds              int    `envconfig:"REVISION_TIMEOUT_SECONDS" required:"true"`
	RevisionResponseStartTimeoutSeconds int    `envconfig:"REVISION_RESPONSE_START_TIMEOUT_SECONDS"`
	RevisionIdleTimeoutSeconds          int    `envconfig:"REVISION_IDLE_TIMEOUT_SECONDS"`
	ServingReadinessProbe               string `envconfig:"SERVING_READINESS_PROBE"`
	EnableHTTPFullDuplex                bool   `envconfig:"ENABLE_HTTP_FULL_DUPLEX"`
	EnableHTTP2AutoDetection            bool   `envconfig:"ENABLE_HTTP2_AUTO_DETECTION"`
	EnableMultiContainerProbes          bool   `envconfig:"ENABLE_MULTI_CONTAINER_PROBES"`

	// Logging (§1a).
	ServingLoggingConfig string `envconfig:"SERVING_LOGGING_CONFIG" required:"true"`
	ServingLoggingLevel  string `envconfig:"SERVING_LOGGING_LEVEL" required:"true"`

	// Knative 1.15 observability variables (§1d); all optional.
	EnableProfiling                             bool    `envconfig:"ENABLE_PROFILING"`
	ServingRequestLogTemplate                   string  `envconfig:"SERVING_REQUEST_LOG_TEMPLATE"`
	ServingEnableRequestLog                     bool    `envconfig:"SERVING_ENABLE_REQUEST_LOG"`
	ServingEnableProbeRequestLog                bool    `envconfig:"SERVING_ENABLE_PROBE_REQUEST_LOG"`
	ServingRequestMetricsBackend                string  `envconfig:"SERVING_REQUEST_METRICS_BACKEND"`
	ServingRequestMetricsReportingPeriodSeconds int     `envconfig:"SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS"`
	MetricsCollectorAddress                     string  `envconfig:"METRICS_COLLECTOR_ADDRESS"`
	MetricsDomain                               string  `envconfig:"METRICS_DOMAIN"`
	TracingConfigBackend                        string  `envconfig:"TRACING_CONFIG_BACKEND"`
	TracingConfigZipkinEndpoint                 string  `envconfig:"TRACING_CONFIG_ZIPKIN_ENDPOINT"`
	TracingConfigDebug                          bool    `envconfig:"TRACING_CONFIG_DEBUG"`
	TracingConfigSampleRate                     float64 `envconfig:"TRACING_CONFIG_SAMPLE_RATE"`

	// Newest-generation variables read directly in Knative (§1b).
	ObservabilityConfig string `envconfig:"OBSERVABILITY_CONFIG"`
	ProfilingPort       string `envconfig:"PROFILING_PORT" default:"8008"`

	// Our extensions. Knative hard-codes these; operators and tests asked
	// for them to be configurable. Defaults are Knative's values.
	DrainQuietPeriod   time.Duration `envconfig:"QP_DRAIN_QUIET_PERIOD" default:"30s"`
	HijackDrainTimeout time.Duration `envconfig:"QP_HIJACK_DRAIN_TIMEOUT" default:"60s"`
	AdminPort          string        `envconfig:"QP_ADMIN_PORT" default:"8022"`
	MetricsPort        string        `envconfig:"QP_METRICS_PORT" default:"9090"`
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
	if c.DrainQuietPeriod <= 0 {
		errs = append(errs, errors.New("QP_DRAIN_QUIET_PERIOD: must be positive, got "+c.DrainQuietPeriod.String()))
	}
	if c.HijackDrainTimeout < 0 {
		errs = append(errs, errors.New("QP_HIJACK_DRAIN_TIMEOUT: must not be negative, got "+c.HijackDrainTimeout.String()))
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
