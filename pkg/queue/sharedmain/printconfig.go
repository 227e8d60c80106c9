package sharedmain

import (
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
)

// PrintConfig reads the environment exactly as Main does at startup and
// writes the resolved configuration to w as one indented JSON document
// (printconfig_doc.go says what it holds): every setting with its value and
// where it came from, the observability generation and why, and the derived
// values (listeners, timeouts, upstream path, tracing, request metrics).
// Secrets are redacted (printconfig_redact.go).
//
// It returns the error Main would return for the same environment, with the
// same text, and writes nothing then; the caller prints it on stderr and
// exits 1. It starts nothing: no listener, exporter or goroutine. It does not
// look at files only the running pod has: the serving certificate in
// QP_CERT_DIR (and so the QUEUE_PROXY_TLS_* policy, read only when it is
// there) and the METRICS_PROMETHEUS_TLS_CERT/KEY pair.
//
// cmd/queue-proxy offers it as -print-config; a custom build may too.
func PrintConfig(w io.Writer) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	obs, err := cfg.observability()
	if err != nil {
		return err
	}
	c, _, err := checkEnv(cfg, obs)
	if err != nil {
		return err
	}
	doc, err := c.document()
	if err != nil {
		return err
	}
	_, err = w.Write(doc)
	return err
}

// renderOnce returns a func that renders c's document on its first call
// and returns the same bytes on every call: run keeps the rendering off its
// startup path, and checkEnv captured the environment at startup.
func (c envCheck) renderOnce() func() ([]byte, error) { return sync.OnceValues(c.document) }

// The stages of run whose environment checkEnv checks, as run logs their
// failures.
const (
	stageTracing   = "Failed to set up tracing"
	stageMetrics   = "Failed to set up request metrics"
	stageReadiness = "Queue container failed to parse readiness probe"
)

// envCheck is what checkEnv resolved, for the document.
type envCheck struct {
	cfg *config
	obs observability

	tracing    tracingSettings
	traceOTLP  *otlp.Config // OTLP span export; nil otherwise
	traceBatch spanbatch.Config

	metricsOutput   string // "" (off), prometheus, grpc, http/protobuf
	metricsSource   string // as metricsOutput says it: NAME=value
	metricsEnv      metricsEnv
	userMetricsAddr string // prometheus
	userMetricsTLS  userMetricsTLSEnv
	metricsOTLP     *otlp.Config // OTLP metrics export; nil otherwise
	exportInterval  time.Duration
	exportTimeout   time.Duration

	warnings []string // what startup would log as warnings

	// What the document needs of the environment, captured by checkEnv so
	// that rendering it later (run renders on the first /debug/config
	// request: it costs more CPU than a cold start should spend) shows
	// what startup read.
	environ map[string]string // the variables, first occurrence of each
	specs   []any             // envSpecs as read: a pointer per struct; nil if it did not parse
}

// lookup is os.LookupEnv at the time of the check.
func (c envCheck) lookup(name string) (string, bool) {
	v, ok := c.environ[name]
	return v, ok
}

// getenv is os.Getenv at the time of the check.
func (c envCheck) getenv(name string) string { return c.environ[name] }

// checkEnv makes, in run's order and with the functions run's setup
// calls, so with the same errors, every check of the environment that run
// makes after cfg.observability: tracing (setupTracing: the protocol, the
// sampler variables, the OTLP endpoint, headers, timeout, compression and
// certificate variables, OTEL_BSP_*), request metrics (setupMetrics:
// METRICS_PROMETHEUS_*, requestMetrics.endpoint, the OTLP variables,
// OTEL_METRIC_EXPORT_*) and the readiness probe (newProber). Left to the
// setup are the checks of files only the pod has (PrintConfig lists them).
// run calls it before it builds anything, so that startup fails exactly
// where -print-config does; stage says which setup step failed. It builds
// nothing that runs.
func checkEnv(cfg *config, obs observability) (c envCheck, stage string, err error) {
	logger, warnings := newWarningLogger()
	c = envCheck{cfg: cfg, obs: obs}
	if err := c.checkTracing(logger); err != nil {
		return c, stageTracing, err
	}
	metricsWarnings, err := c.checkMetrics()
	if err != nil {
		return c, stageMetrics, err
	}
	if _, err := newProber(cfg, zap.NewNop().Sugar()); err != nil {
		return c, stageReadiness, err
	}
	c.warnings = append(*warnings, metricsWarnings...)
	c.environ = environSnapshot()
	c.specs = readEnvSpecs(cfg, &c.warnings)
	return c, "", nil
}

// environSnapshot is the process environment as a map; a name that occurs
// twice keeps its first value, as os.Getenv does.
func environSnapshot() map[string]string {
	env := os.Environ()
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

// readEnvSpecs reads every struct of envSpecs as envconfig does: config is
// cfg, the others are read now. A struct that does not parse (startup
// reads some only when their feature is on) is nil, with a warning.
func readEnvSpecs(cfg *config, warnings *[]string) []any {
	specs := make([]any, len(envSpecs))
	for i, spec := range envSpecs {
		if _, ok := spec.(config); ok {
			specs[i] = cfg
			continue
		}
		ptr := reflect.New(reflect.TypeOf(spec)).Interface()
		if err := envconfig.Process("", ptr); err != nil {
			*warnings = append(*warnings, err.Error())
			continue
		}
		specs[i] = ptr
	}
	return specs
}

// checkTracing is setupTracing up to building the exporter: resolveTracing,
// then for OTLP the exporter's and the batch processor's variables.
func (c *envCheck) checkTracing(logger *zap.SugaredLogger) error {
	s, err := resolveTracing(c.cfg, c.obs.config.Tracing, os.Getenv, logger)
	if err != nil {
		return err
	}
	c.tracing = s
	if s.exporter != tracingOTLPGRPC && s.exporter != tracingOTLPHTTP {
		return nil
	}
	ocfg, err := otlp.ResolveConfig(otlp.Traces, s.exporter, s.endpoint, os.Getenv)
	if err != nil {
		return err
	}
	if c.traceBatch, err = spanbatch.ConfigFromEnv(os.Getenv); err != nil {
		return err
	}
	c.traceOTLP = &ocfg
	return nil
}

// checkMetrics is newMetricsHooks up to building the metrics: the output,
// metricsEnv, then the Prometheus server's address and TLS variables
// (userMetricsTLS before it loads the certificate), or the OTLP exporter's
// variables and export timing (otlpHooks).
func (c *envCheck) checkMetrics() (warnings []string, err error) {
	c.metricsOutput, c.metricsSource, warnings = metricsOutput(c.obs.gen, c.cfg.ServingRequestMetricsBackend, c.obs.config.RequestMetrics.Protocol)
	if c.metricsOutput == "" {
		return warnings, nil
	}
	if err := envconfig.Process("", &c.metricsEnv); err != nil {
		return nil, err
	}
	endpoint := c.obs.config.RequestMetrics.Endpoint
	if c.metricsOutput == ProtocolPrometheus {
		if c.userMetricsAddr, err = userMetricsAddr(endpoint, c.metricsEnv); err != nil {
			return nil, err
		}
		if err := envconfig.Process("", &c.userMetricsTLS); err != nil {
			return nil, err
		}
		if _, err := c.userMetricsTLS.config(); err != nil {
			return nil, err
		}
		return warnings, nil
	}
	ocfg, err := otlp.ResolveConfig(otlp.Metrics, c.metricsOutput, endpoint, os.Getenv)
	if err != nil {
		return nil, err
	}
	if c.exportInterval, err = exportInterval(c.obs.config.RequestMetrics.ExportInterval, c.metricsEnv.ExportInterval); err != nil {
		return nil, err
	}
	c.exportTimeout = defaultExportTimeout
	if c.metricsEnv.ExportTimeout != "" {
		if c.exportTimeout, err = positiveMillis("OTEL_METRIC_EXPORT_TIMEOUT", c.metricsEnv.ExportTimeout); err != nil {
			return nil, err
		}
	}
	c.metricsOTLP = &ocfg
	return warnings, nil
}
