package sampling

import (
	"testing"

	octrace "go.opencensus.io/trace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestParentBased checks each kind of parent against the SDK's ParentBased
// with its defaults, for roots that always, never and sometimes sample.
func TestParentBased(t *testing.T) {
	for _, tc := range []struct {
		name string
		root choice
		sdk  sdktrace.Sampler
	}{
		{"always on", alwaysOn, sdktrace.AlwaysSample()},
		{"always off", alwaysOff, sdktrace.NeverSample()},
		{"ratio 0.3", traceIDRatio(0.3), sdktrace.TraceIDRatioBased(0.3)},
		{"ratio 1", traceIDRatio(1), sdktrace.TraceIDRatioBased(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parentBased(tc.root)
			assertMatchesSDK(t, c.sampler, c.desc, sdktrace.ParentBased(tc.sdk))
		})
	}
}

// TestParentBasedTable states the rule per parent, whatever the root says.
func TestParentBasedTable(t *testing.T) {
	id := [16]byte{15: 1}
	for _, tc := range []struct {
		parent   parent
		rootSays bool
		want     bool
	}{
		{noParent, true, true},
		{noParent, false, false},
		{remoteSampled, false, true},
		{remoteNotSampled, true, false},
		{localSampled, false, true},
		{localNotSampled, true, false},
		{zeroSpanID, false, false}, // not a parent: the root decides
		{zeroSpanID, true, true},
	} {
		root := func(octrace.SamplingParameters) octrace.SamplingDecision {
			return octrace.SamplingDecision{Sample: tc.rootSays}
		}
		if got := ParentBased(root)(ocParams(id, tc.parent)).Sample; got != tc.want {
			t.Errorf("parent %v, root says %v: sampled = %v, want %v", tc.parent, tc.rootSays, got, tc.want)
		}
	}
}
