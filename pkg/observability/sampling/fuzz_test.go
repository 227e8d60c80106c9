package sampling

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// FuzzFromConfig feeds arbitrary rates, sampler names and arguments to
// FromConfig and checks that it never panics, that its errors are of the
// documented kinds and name their variable, and that its decision for the
// fuzzed trace id and parent is the SDK's: the real tracer provider's when
// OTEL_TRACES_SAMPLER is set, otherwise the §5.6 rule built from SDK
// samplers.
func FuzzFromConfig(f *testing.F) {
	for _, name := range []string{"", " ", "always_on", "always_off", "traceidratio", "parentbased_always_on",
		"parentbased_always_off", "PARENTBASED_TRACEIDRATIO", "nope"} {
		for _, arg := range []string{"", "0.5", " 0.5", "2", "-1", "NaN", "x", "1e400", "0x1p-3"} {
			f.Add(0.25, name, arg, []byte{0, 1, 2, 3, 4, 5, 6, 7, 0x80, 1, 2, 3, 4, 5, 6, 7}, uint8(0))
		}
	}
	f.Add(1.0, "", "0.1", []byte{15: 0xff}, uint8(2))
	f.Add(math.NaN(), "", "", []byte{}, uint8(1))

	f.Fuzz(func(t *testing.T, rate float64, name, arg string, idBytes []byte, parentByte uint8) {
		env := map[string]string{EnvSampler: name, EnvSamplerArg: arg}
		s, desc, err := FromConfig(rate, envOf(env))

		var w *Warning
		switch {
		case errors.As(err, &w):
			if name == "" || s == nil || desc == "" {
				t.Fatalf("warning %v with name %q, sampler %v, description %q", err, name, s != nil, desc)
			}
			if !strings.Contains(err.Error(), w.Var+"=") || (w.Var != EnvSampler && w.Var != EnvSamplerArg) {
				t.Fatalf("warning %q names %q", err, w.Var)
			}
		case err != nil:
			if name != "" || s != nil || desc != "" || !strings.Contains(err.Error(), EnvSamplerArg+"=") {
				t.Fatalf("fatal error %q with name %q, sampler %v, description %q", err, name, s != nil, desc)
			}
			return
		case s == nil || desc == "":
			t.Fatalf("no error and no sampler (description %q)", desc)
		}

		var id [16]byte
		copy(id[:], idBytes)
		p := allParents[int(parentByte)%len(allParents)]
		got := s(ocParams(id, p)).Sample

		if name != "" {
			if strings.ContainsRune(name, 0) || strings.ContainsRune(arg, 0) {
				t.Skip("the environment cannot hold NUL")
			}
			sdk, reported := sdkFromEnv(t, env)
			if want := sdk.samples(id, p); got != want {
				t.Fatalf("trace id %x, parent %v: sampled = %v (%s), the SDK provider %v", id, p, got, desc, want)
			}
			if (err != nil) != (len(reported) > 0) {
				t.Fatalf("our error %v, the SDK reported %v", err, reported)
			}
			return
		}

		want := specSampler(rate, arg)
		if desc != want.Description() {
			t.Fatalf("description %q, want %q", desc, want.Description())
		}
		if w := sdkSamples(want, id, p); got != w {
			t.Fatalf("trace id %x, parent %v: sampled = %v, the SDK's %s %v", id, p, got, want.Description(), w)
		}
	})
}

// specSampler is CONTRACT.md §5.6's sampler without OTEL_TRACES_SAMPLER,
// built from SDK samplers, for an override arg that parses (or is empty).
func specSampler(rate float64, arg string) sdktrace.Sampler {
	effective := rate
	if arg != "" {
		effective = mustParse(arg)
	}
	switch {
	case effective >= 1:
		return sdktrace.AlwaysSample()
	case rate <= 0:
		return sdktrace.NeverSample()
	}
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate))
}

// mustParse parses an override FromConfig accepted.
func mustParse(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return v
}
