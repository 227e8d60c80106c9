package sampling

import (
	"fmt"
	"os"
	"strconv"

	"go.opencensus.io/trace"
)

// FromConfig returns the sampler Knative's newest queue-proxy uses for the
// configured tracing.samplingRate and the environment (getenv; nil means
// os.Getenv), with its description for the startup log, as CONTRACT.md §5.6
// says:
//
//   - OTEL_TRACES_SAMPLER set (non-empty, even if only blanks): the
//     OpenTelemetry SDK's own environment rules decide and samplingRate is
//     ignored. A bad name or ratio is not fatal there, as in Knative: the
//     sampler is the SDK's fallback and the error is a *Warning to log.
//   - Otherwise rate = samplingRate, replaced by OTEL_TRACES_SAMPLER_ARG when
//     that is non-empty; it is parsed as is (not trimmed) and a parse error
//     is fatal: the sampler is nil and the error names the variable.
//   - rate >= 1: always sample, whatever the parent says.
//   - Else, the configured samplingRate <= 0: never sample.
//   - Else ParentBased(TraceIDRatioBased(samplingRate)). The quirk: the
//     override only counts for the rate >= 1 test; below 1 the configured
//     rate is the ratio (and a configured rate >= 1 then samples every root).
//
// The description is what the SDK sampler's Description method returns,
// e.g. "AlwaysOnSampler" or "ParentBased{root:TraceIDRatioBased{0.1},...}".
func FromConfig(samplingRate float64, getenv func(string) string) (trace.Sampler, string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv(EnvSampler) != "" {
		c, w := fromSDKEnv(getenv)
		if w != nil {
			return c.sampler, c.desc, w
		}
		return c.sampler, c.desc, nil
	}

	rate := samplingRate
	if raw := getenv(EnvSamplerArg); raw != "" {
		override, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%s=%q: unable to parse sample rate override: %w", EnvSamplerArg, raw, err)
		}
		rate = override
	}

	var c choice
	switch {
	case rate >= 1:
		c = alwaysOn
	case samplingRate <= 0:
		c = alwaysOff
	default:
		c = parentBased(traceIDRatio(samplingRate))
	}
	return c.sampler, c.desc, nil
}
