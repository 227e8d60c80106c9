package sharedmain

import (
	"encoding/json"
	"errors"
	"time"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	pkgobs "github.com/queue-proxy/queue-proxy/pkg/observability"
)

// ObservabilityConfig is the newest generation's OBSERVABILITY_CONFIG JSON
// (CONTRACT.md §1b). It is decoded on top of the defaults, so absent fields
// keep them; unknown fields are ignored, as Knative ignores them.
type ObservabilityConfig struct {
	Tracing               TracingConfig `json:"tracing"`
	Metrics               MetricsConfig `json:"metrics"`
	Runtime               RuntimeConfig `json:"runtime"`
	RequestMetrics        MetricsConfig `json:"requestMetrics"`
	EnableRequestLog      bool          `json:"enableRequestLog,omitempty"`
	RequestLogTemplate    string        `json:"requestLogTemplate,omitempty"`
	EnableProbeRequestLog bool          `json:"enableProbeRequestLog,omitempty"`
}

// TracingConfig selects the span exporter.
type TracingConfig struct {
	Protocol     string  `json:"protocol"`
	Endpoint     string  `json:"endpoint,omitempty"`
	SamplingRate float64 `json:"samplingRate,omitempty"`
}

// MetricsConfig selects a metrics exporter. Intervals are nanoseconds.
type MetricsConfig struct {
	Protocol       string        `json:"protocol"`
	Endpoint       string        `json:"endpoint,omitempty"`
	ExportInterval time.Duration `json:"exportInterval,omitempty"`
}

// RuntimeConfig controls profiling and runtime metrics.
type RuntimeConfig struct {
	Profiling      string        `json:"profiling"`
	ExportInterval time.Duration `json:"exportInterval,omitempty"`
}

// Values of the protocol and profiling fields.
const (
	ProtocolNone       = "none"
	ProtocolPrometheus = "prometheus"
	ProfilingEnabled   = "enabled"
	ProfilingDisabled  = "disabled"
)

// DefaultRequestLogTemplate is the newest generation's default request-log
// template (CONTRACT.md §3.11); pkg/http renders it on a fast path.
const DefaultRequestLogTemplate = pkghttp.DefaultRequestLogTemplate

// DefaultObservabilityConfig is what an unset or empty OBSERVABILITY_CONFIG
// means: everything off, runtime export every 15 s, the default template.
func DefaultObservabilityConfig() ObservabilityConfig {
	return ObservabilityConfig{
		Tracing:            TracingConfig{Protocol: ProtocolNone},
		Metrics:            MetricsConfig{Protocol: ProtocolNone},
		Runtime:            RuntimeConfig{Profiling: ProfilingDisabled, ExportInterval: 15 * time.Second},
		RequestMetrics:     MetricsConfig{Protocol: ProtocolNone},
		RequestLogTemplate: DefaultRequestLogTemplate,
	}
}

// ParseObservabilityConfig decodes s over the defaults. An empty s yields
// the defaults; malformed JSON is an error (fatal at startup, as in Knative).
func ParseObservabilityConfig(s string) (ObservabilityConfig, error) {
	c := DefaultObservabilityConfig()
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return DefaultObservabilityConfig(), errors.New("OBSERVABILITY_CONFIG: failed to parse: " + err.Error())
	}
	return c, nil
}

// observability is the effective observability setup, merged from both
// generations' variables. For each feature the 1.15 variable and the
// OBSERVABILITY_CONFIG field are OR-ed: either one turns the feature on.
// The generation decides how the outputs look (names, units, labels,
// export protocols); genReason says why it was chosen, for the startup log.
type observability struct {
	config    ObservabilityConfig
	profiling bool
	gen       *pkgobs.Generation
	genReason string
}

// Values of QP_OBSERVABILITY_GENERATION.
const (
	generationAuto   = "auto"
	generation115    = "1.15"
	generationNewest = "newest"
)

func (c *config) observability() (observability, error) {
	oc, err := ParseObservabilityConfig(c.ObservabilityConfig)
	if err != nil {
		return observability{}, err
	}
	gen, reason := selectGeneration(c.ObservabilityGeneration, c.ObservabilityConfig)
	return observability{
		config:    oc,
		profiling: c.EnableProfiling || oc.Runtime.Profiling == ProfilingEnabled,
		gen:       gen,
		genReason: reason,
	}, nil
}

// selectGeneration picks the generation whose outputs queue-proxy produces:
// the one QP_OBSERVABILITY_GENERATION forces, else the newest when
// OBSERVABILITY_CONFIG is set and not empty (every reconciler since Knative
// 1.19 sets it), else 1.15. The value was validated by config.validate.
func selectGeneration(forced, observabilityConfig string) (*pkgobs.Generation, string) {
	switch forced {
	case generation115:
		return pkgobs.Generation115, "QP_OBSERVABILITY_GENERATION=" + forced
	case generationNewest:
		return pkgobs.GenerationNewest, "QP_OBSERVABILITY_GENERATION=" + forced
	}
	if observabilityConfig != "" {
		return pkgobs.GenerationNewest, "OBSERVABILITY_CONFIG is set"
	}
	return pkgobs.Generation115, "OBSERVABILITY_CONFIG is not set"
}
