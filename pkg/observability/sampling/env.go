package sampling

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The variables the sampler rules read.
const (
	// EnvSampler names the sampler; when set, the SDK's rules decide.
	EnvSampler = "OTEL_TRACES_SAMPLER"
	// EnvSamplerArg is the ratio of the ratio samplers, and Knative's
	// override of tracing.samplingRate when EnvSampler is not set.
	EnvSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
)

// Warning is the error FromConfig returns together with a usable sampler
// when OTEL_TRACES_SAMPLER is set and it, or the ratio in
// OTEL_TRACES_SAMPLER_ARG, is bad. Knative leaves that case to the
// OpenTelemetry SDK, which only reports the error (otel.Handle, a log line)
// and carries on with a fallback sampler; so does the queue-proxy: it logs a
// Warning and does not exit.
type Warning struct {
	// Var is the variable at fault, EnvSampler or EnvSamplerArg.
	Var string
	// Value is its value as read.
	Value string
	// Err says what is wrong with it.
	Err error
}

// Error names the variable, its value and the problem.
func (w *Warning) Error() string {
	return fmt.Sprintf("%s=%q: %v; using the OpenTelemetry SDK's fallback sampler", w.Var, w.Value, w.Err)
}

// Unwrap returns the underlying problem.
func (w *Warning) Unwrap() error { return w.Err }

// The problems the SDK reports for a ratio argument out of range.
var (
	errRatioBelowZero = errors.New("invalid trace ID ratio: less than 0.0")
	errRatioAboveOne  = errors.New("invalid trace ID ratio: greater than 1.0")
)

// fromSDKEnv is the sampler the OpenTelemetry SDK's tracer provider takes
// from the environment. The sampler name is trimmed and lower-cased, the
// argument trimmed; the argument matters only to the two ratio samplers,
// which default to a ratio of 1 without one. An unknown name gives the
// SDK's default sampler, ParentBased(AlwaysSample) (also for a name that is
// only blanks), and a ratio that does not parse or lies outside [0, 1] gives
// a ratio of 1; both with a Warning.
func fromSDKEnv(getenv func(string) string) (choice, *Warning) {
	rawName := getenv(EnvSampler)
	switch strings.ToLower(strings.TrimSpace(rawName)) {
	case "":
		return parentBased(alwaysOn), nil
	case "always_on":
		return alwaysOn, nil
	case "always_off":
		return alwaysOff, nil
	case "traceidratio":
		return ratioFromArg(getenv(EnvSamplerArg))
	case "parentbased_always_on":
		return parentBased(alwaysOn), nil
	case "parentbased_always_off":
		return parentBased(alwaysOff), nil
	case "parentbased_traceidratio":
		root, w := ratioFromArg(getenv(EnvSamplerArg))
		return parentBased(root), w
	default:
		return parentBased(alwaysOn), &Warning{Var: EnvSampler, Value: rawName, Err: errors.New("unsupported sampler")}
	}
}

// ratioFromArg is the SDK's TraceIDRatioBased sampler for the (raw)
// OTEL_TRACES_SAMPLER_ARG value.
func ratioFromArg(raw string) (choice, *Warning) {
	arg := strings.TrimSpace(raw)
	if arg == "" {
		return traceIDRatio(1), nil
	}
	v, err := strconv.ParseFloat(arg, 64)
	switch {
	case err != nil:
		return traceIDRatio(1), &Warning{Var: EnvSamplerArg, Value: raw, Err: err}
	case v < 0:
		return traceIDRatio(1), &Warning{Var: EnvSamplerArg, Value: raw, Err: errRatioBelowZero}
	case v > 1:
		return traceIDRatio(1), &Warning{Var: EnvSamplerArg, Value: raw, Err: errRatioAboveOne}
	}
	return traceIDRatio(v), nil
}
