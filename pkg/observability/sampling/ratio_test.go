package sampling

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	octrace "go.opencensus.io/trace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ratios are the fractions the ratio tests try: the edges, special values
// and 300 random ones (fixed seed), some of them tiny.
func ratios() []float64 {
	rs := []float64{
		0, math.Copysign(0, -1), -1, 1, 2, math.NaN(), math.Inf(1), math.Inf(-1),
		math.SmallestNonzeroFloat64, 1e-19, 1e-9, 1e-4, 0.1, 0.25, 1.0 / 3, 0.5, 0.75,
		0.9999999, math.Nextafter(1, 0),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 250 {
		rs = append(rs, r.Float64())
	}
	for range 50 {
		rs = append(rs, math.Pow(10, -18*r.Float64()))
	}
	return rs
}

// boundaryIDs are trace ids whose 63-bit number lies just below, at and
// just above the bound of ratio f (both values of the discarded low bit),
// with random upper halves.
func boundaryIDs(f float64, r *rand.Rand) [][16]byte {
	if !(f > 0 && f < 1) {
		return nil
	}
	bound := uint64(f * (1 << 63))
	var ids [][16]byte
	for _, x := range []uint64{bound - 1, bound, bound + 1} {
		for _, low := range []uint64{0, 1} {
			var id [16]byte
			binary.BigEndian.PutUint64(id[0:8], r.Uint64())
			binary.BigEndian.PutUint64(id[8:16], x<<1|low)
			ids = append(ids, id)
		}
	}
	return ids
}

// TestTraceIDRatioBasedMatchesSDK compares the decision with the SDK's
// TraceIDRatioBased for every ratio and many trace ids, with no parent and
// with each kind of parent (the ratio sampler ignores the parent).
func TestTraceIDRatioBasedMatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	random := probeIDs(400)
	for _, f := range ratios() {
		ours, want := traceIDRatio(f), sdktrace.TraceIDRatioBased(f)
		if ours.desc != want.Description() {
			t.Errorf("ratio %v: description %q, want %q", f, ours.desc, want.Description())
		}
		sampled := 0
		ids := append(boundaryIDs(f, r), random...)
		for _, id := range ids {
			for _, p := range allParents {
				g, w := TraceIDRatioBased(f)(ocParams(id, p)).Sample, sdkSamples(want, id, p)
				if g != w {
					t.Fatalf("ratio %v, trace id %x, parent %v: sampled = %v, SDK %v", f, id, p, g, w)
				}
				if g {
					sampled++
				}
			}
		}
		t.Logf("ratio %v: %d of %d probes sampled", f, sampled, len(ids)*len(allParents))
	}
}

// TestProbesTellTheHalvesApart makes sure the comparison above can fail: a
// sampler that reads the first 8 bytes of the trace id, as OpenCensus'
// ProbabilitySampler does, must disagree with the SDK on the probe ids.
func TestProbesTellTheHalvesApart(t *testing.T) {
	for _, f := range []float64{0.1, 0.5, 0.9} {
		bound := uint64(f * (1 << 63))
		upper := func(p octrace.SamplingParameters) bool {
			return binary.BigEndian.Uint64(p.TraceID[0:8])>>1 < bound
		}
		want := sdktrace.TraceIDRatioBased(f)
		disagree := 0
		for _, id := range probeIDs(400) {
			if upper(ocParams(id, noParent)) != sdkSamples(want, id, noParent) {
				disagree++
			}
		}
		if disagree == 0 {
			t.Errorf("ratio %v: an upper-half sampler agrees with the SDK on every probe", f)
		}
	}
}

// TestTraceIDRatioBasedEdges pins the decisions at fixed trace ids, so a
// change in the SDK's algorithm (seen by the comparison) and ours cannot go
// unnoticed together.
func TestTraceIDRatioBasedEdges(t *testing.T) {
	lowHalf := func(x uint64) [16]byte {
		var id [16]byte
		binary.BigEndian.PutUint64(id[0:8], math.MaxUint64) // never read
		binary.BigEndian.PutUint64(id[8:16], x)
		return id
	}
	half := uint64(1) << 62 // bound of 0.5
	for _, tc := range []struct {
		name  string
		ratio float64
		id    [16]byte
		want  bool
	}{
		{"zero id at 0.5", 0.5, lowHalf(0), true},
		{"just below the bound", 0.5, lowHalf((half-1)<<1 | 1), true},
		{"at the bound", 0.5, lowHalf(half << 1), false},
		{"low bit ignored", 0.5, lowHalf(half<<1 | 1), false},
		{"max id at 0.5", 0.5, lowHalf(math.MaxUint64), false},
		{"zero id at tiny ratio", math.SmallestNonzeroFloat64, lowHalf(0), false},
		{"zero id at 1e-18", 1e-18, lowHalf(0), true},
		{"max id at ratio 1", 1, lowHalf(math.MaxUint64), true},
		{"max id just below 1", math.Nextafter(1, 0), lowHalf(math.MaxUint64), false},
		{"zero id at ratio 0", 0, lowHalf(0), false},
		{"zero id at negative ratio", -0.5, lowHalf(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TraceIDRatioBased(tc.ratio)(ocParams(tc.id, noParent)).Sample
			if got != tc.want {
				t.Errorf("sampled = %v, want %v", got, tc.want)
			}
			if sdk := sdkSamples(sdktrace.TraceIDRatioBased(tc.ratio), tc.id, noParent); sdk != tc.want {
				t.Errorf("the SDK says %v, the table %v: the table is wrong", sdk, tc.want)
			}
		})
	}
}
