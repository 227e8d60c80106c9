package sampling

import (
	"errors"
	"math"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// envOf returns a getenv for the given variables.
func envOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// TestFromConfigRules is CONTRACT.md §5.6 without OTEL_TRACES_SAMPLER: each
// row, with the SDK sampler Knative would build, compared decision by
// decision and by description.
func TestFromConfigRules(t *testing.T) {
	pbRatio := func(f float64) sdktrace.Sampler { return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f)) }
	for _, tc := range []struct {
		name string
		rate float64
		env  map[string]string
		want sdktrace.Sampler
	}{
		{"ratio below 1 is parent based", 0.5, nil, pbRatio(0.5)},
		{"rate 1 always samples, not parent based", 1, nil, sdktrace.AlwaysSample()},
		{"rate above 1 always samples", 2, nil, sdktrace.AlwaysSample()},
		{"rate 0 never samples", 0, nil, sdktrace.NeverSample()},
		{"negative rate never samples", -1, nil, sdktrace.NeverSample()},
		{"tiny rate", 1e-9, nil, pbRatio(1e-9)},
		{"NaN rate reaches the ratio sampler", math.NaN(), nil, pbRatio(math.NaN())},
		{"override 1 always samples", 0.5, map[string]string{EnvSamplerArg: "1"}, sdktrace.AlwaysSample()},
		{"override above 1 always samples", 0.5, map[string]string{EnvSamplerArg: "7"}, sdktrace.AlwaysSample()},
		{"override +Inf always samples", 0.5, map[string]string{EnvSamplerArg: "+Inf"}, sdktrace.AlwaysSample()},
		{"quirk: override below 1 is ignored", 0.5, map[string]string{EnvSamplerArg: "0.1"}, pbRatio(0.5)},
		{"quirk: override 0 is ignored", 0.5, map[string]string{EnvSamplerArg: "0"}, pbRatio(0.5)},
		{"quirk: override NaN is ignored", 0.5, map[string]string{EnvSamplerArg: "NaN"}, pbRatio(0.5)},
		{"quirk: override -Inf is ignored", 0.5, map[string]string{EnvSamplerArg: "-Inf"}, pbRatio(0.5)},
		{"quirk: configured 0 beats override 0.5", 0, map[string]string{EnvSamplerArg: "0.5"}, sdktrace.NeverSample()},
		{"override 1 beats configured 0", 0, map[string]string{EnvSamplerArg: "1"}, sdktrace.AlwaysSample()},
		{"quirk: configured 1 with override 0.1 is parent based", 1, map[string]string{EnvSamplerArg: "0.1"}, pbRatio(1)},
		{"quirk: configured 3 with override 0 is parent based", 3, map[string]string{EnvSamplerArg: "0"}, pbRatio(3)},
		{"empty OTEL_TRACES_SAMPLER counts as unset", 0.25, map[string]string{EnvSampler: "", EnvSamplerArg: ""}, pbRatio(0.25)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, desc, err := FromConfig(tc.rate, envOf(tc.env))
			if err != nil {
				t.Fatalf("FromConfig: %v", err)
			}
			assertMatchesSDK(t, s, desc, tc.want)
		})
	}
}

// TestFromConfigFatal: without OTEL_TRACES_SAMPLER, an override that does
// not parse (as is: Knative does not trim it) is fatal and names the
// variable.
func TestFromConfigFatal(t *testing.T) {
	for _, arg := range []string{"abc", " 0.5", "0.5\n", "1e400", "0x", "50%", "1,5"} {
		t.Run(arg, func(t *testing.T) {
			s, desc, err := FromConfig(0.5, envOf(map[string]string{EnvSamplerArg: arg}))
			if err == nil {
				t.Fatalf("no error; sampler %s", desc)
			}
			if s != nil || desc != "" {
				t.Errorf("a fatal error came with sampler %q", desc)
			}
			var w *Warning
			if errors.As(err, &w) {
				t.Errorf("error %v is a Warning, want fatal", err)
			}
			if !strings.Contains(err.Error(), EnvSamplerArg) {
				t.Errorf("error %q does not name %s", err, EnvSamplerArg)
			}
		})
	}
}

// envCase is a setting of OTEL_TRACES_SAMPLER (and _ARG): the SDK decides.
type envCase struct {
	name    string
	env     map[string]string
	want    sdktrace.Sampler
	warnVar string // the variable a Warning names, "" for none
}

// envCases covers every sampler name, the argument rules and the bad
// values, each with the sampler the SDK picks.
func envCases() []envCase {
	ratio, pb := sdktrace.TraceIDRatioBased, sdktrace.ParentBased
	env := func(name, arg string) map[string]string {
		return map[string]string{EnvSampler: name, EnvSamplerArg: arg}
	}
	return []envCase{
		{"always_on", env("always_on", ""), sdktrace.AlwaysSample(), ""},
		{"always_off", env("always_off", ""), sdktrace.NeverSample(), ""},
		{"traceidratio without arg", env("traceidratio", ""), ratio(1), ""},
		{"traceidratio", env("traceidratio", "0.25"), ratio(0.25), ""},
		{"traceidratio 0", env("traceidratio", "0"), ratio(0), ""},
		{"traceidratio 1", env("traceidratio", "1"), ratio(1), ""},
		{"traceidratio arg trimmed", env("traceidratio", " 0.25\t"), ratio(0.25), ""},
		{"traceidratio NaN", env("traceidratio", "NaN"), ratio(math.NaN()), ""},
		{"traceidratio -0", env("traceidratio", "-0"), ratio(0), ""},
		{"traceidratio bad arg", env("traceidratio", "lots"), ratio(1), EnvSamplerArg},
		{"traceidratio negative", env("traceidratio", "-0.1"), ratio(1), EnvSamplerArg},
		{"traceidratio above 1", env("traceidratio", "1.5"), ratio(1), EnvSamplerArg},
		{"traceidratio just above 1", env("traceidratio", "1.0000001"), ratio(1), EnvSamplerArg},
		{"traceidratio out of range", env("traceidratio", "1e400"), ratio(1), EnvSamplerArg},
		{"parentbased_always_on", env("parentbased_always_on", ""), pb(sdktrace.AlwaysSample()), ""},
		{"parentbased_always_off", env("parentbased_always_off", ""), pb(sdktrace.NeverSample()), ""},
		{"parentbased_traceidratio without arg", env("parentbased_traceidratio", ""), pb(ratio(1)), ""},
		{"parentbased_traceidratio", env("parentbased_traceidratio", "0.1"), pb(ratio(0.1)), ""},
		{"parentbased_traceidratio bad arg", env("parentbased_traceidratio", "x"), pb(ratio(1)), EnvSamplerArg},
		{"parentbased_traceidratio above 1", env("parentbased_traceidratio", "2"), pb(ratio(1)), EnvSamplerArg},
		{"name case and blanks ignored", env(" ParentBased_TraceIDRatio ", "0.5"), pb(ratio(0.5)), ""},
		{"arg ignored by always_on", env("always_on", "garbage"), sdktrace.AlwaysSample(), ""},
		{"arg ignored by parentbased_always_off", env("parentbased_always_off", "garbage"), pb(sdktrace.NeverSample()), ""},
		{"unknown name: the SDK default", env("sometimes", "0.5"), pb(sdktrace.AlwaysSample()), EnvSampler},
		{"quirk: blank name: the SDK default", env("  ", "0.5"), pb(sdktrace.AlwaysSample()), ""},
		{"quirk: blank name, bad arg", env(" ", "bad"), pb(sdktrace.AlwaysSample()), ""},
	}
}

// TestFromConfigSDKEnv: with OTEL_TRACES_SAMPLER set, samplingRate does not
// matter and the SDK's rules decide; a bad value is a Warning naming the
// variable, with the SDK's fallback sampler, never fatal (as in Knative).
func TestFromConfigSDKEnv(t *testing.T) {
	for _, tc := range envCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, rate := range []float64{0, 0.5, 1} {
				s, desc, err := FromConfig(rate, envOf(tc.env))
				checkWarning(t, err, tc.warnVar)
				assertMatchesSDK(t, s, desc, tc.want)
			}
		})
	}
}

// checkWarning fails t unless err is a Warning naming wantVar, or nil when
// wantVar is "".
func checkWarning(t *testing.T, err error, wantVar string) {
	t.Helper()
	if wantVar == "" {
		if err != nil {
			t.Errorf("error %v, want none", err)
		}
		return
	}
	var w *Warning
	switch {
	case !errors.As(err, &w):
		t.Errorf("error %v, want a Warning naming %s", err, wantVar)
	case w.Var != wantVar || !strings.Contains(err.Error(), wantVar+"="):
		t.Errorf("warning %q names %s, want %s", err, w.Var, wantVar)
	}
}

// TestFromConfigSDKEnvMatchesProvider sets the variables in the process and
// asks the real SDK tracer provider, as Knative does: the same decisions,
// and an error reported by the SDK exactly when we return a Warning.
func TestFromConfigSDKEnvMatchesProvider(t *testing.T) {
	for _, tc := range envCases() {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := FromConfig(0.5, envOf(tc.env))
			sdk, reported := sdkFromEnv(t, tc.env)
			if (err != nil) != (len(reported) > 0) {
				t.Errorf("our error %v, the SDK reported %v", err, reported)
			}
			for _, id := range probeIDs(100) {
				for _, p := range allParents {
					if g, w := s(ocParams(id, p)).Sample, sdk.samples(id, p); g != w {
						t.Fatalf("trace id %x, parent %v: sampled = %v, the SDK provider %v", id, p, g, w)
					}
				}
			}
		})
	}
}

// TestFromConfigNilGetenv reads the process environment.
func TestFromConfigNilGetenv(t *testing.T) {
	t.Setenv(EnvSampler, "")
	t.Setenv(EnvSamplerArg, "not a number")
	if _, _, err := FromConfig(0.5, nil); err == nil || !strings.Contains(err.Error(), EnvSamplerArg) {
		t.Errorf("error %v, want one naming %s from os.Getenv", err, EnvSamplerArg)
	}
}
