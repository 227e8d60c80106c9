package sampling

import (
	"context"
	"math/rand/v2"
	"testing"

	octrace "go.opencensus.io/trace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// parent is the parent a probe span has.
type parent int

const (
	noParent parent = iota
	remoteSampled
	remoteNotSampled
	localSampled
	localNotSampled
	zeroSpanID // a parent context with a trace id but no span id: not a parent for the SDK
)

var allParents = []parent{noParent, remoteSampled, remoteNotSampled, localSampled, localNotSampled, zeroSpanID}

func (p parent) String() string {
	return [...]string{"none", "remote sampled", "remote not sampled", "local sampled", "local not sampled", "zero span id"}[p]
}

func (p parent) sampled() bool { return p == remoteSampled || p == localSampled || p == zeroSpanID }
func (p parent) remote() bool  { return p == remoteSampled || p == remoteNotSampled || p == zeroSpanID }

// parentSpanID is the span id of every valid probe parent.
var parentSpanID = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}

// ocParams are OpenCensus' sampling parameters for a span of trace id with
// parent p, as trace.StartSpan(WithRemoteParent) passes them.
func ocParams(id [16]byte, p parent) octrace.SamplingParameters {
	params := octrace.SamplingParameters{TraceID: id, SpanID: octrace.SpanID{9}, Name: "probe"}
	if p == noParent {
		return params
	}
	params.ParentContext.TraceID = id
	if p != zeroSpanID {
		params.ParentContext.SpanID = parentSpanID
	}
	if p.sampled() {
		params.ParentContext.TraceOptions = 1
	}
	params.HasRemoteParent = p.remote()
	return params
}

// sdkParent is the SDK span context of parent p of a span of trace id.
func sdkParent(id [16]byte, p parent) oteltrace.SpanContext {
	if p == noParent {
		return oteltrace.SpanContext{}
	}
	cfg := oteltrace.SpanContextConfig{TraceID: id, Remote: p.remote()}
	if p != zeroSpanID {
		cfg.SpanID = parentSpanID
	}
	if p.sampled() {
		cfg.TraceFlags = oteltrace.FlagsSampled
	}
	return oteltrace.NewSpanContext(cfg)
}

// sdkSamples reports whether the SDK sampler s samples a span of trace id
// with parent p.
func sdkSamples(s sdktrace.Sampler, id [16]byte, p parent) bool {
	ctx := oteltrace.ContextWithSpanContext(context.Background(), sdkParent(id, p))
	r := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: id, Name: "probe"})
	return r.Decision == sdktrace.RecordAndSample
}

// probeIDs returns n random trace ids (fixed seed) and a few fixed ones:
// all zeros, all ones, and halves of each.
func probeIDs(n int) [][16]byte {
	r := rand.New(rand.NewPCG(5, 6))
	ids := [][16]byte{{}, {8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}}
	var ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	ids = append(ids, ones, [16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff})
	for range n {
		var id [16]byte
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		ids = append(ids, id)
	}
	return ids
}

// assertMatchesSDK fails t unless our sampler and description are those of
// the SDK sampler want: the same Description and, for every probe trace id
// and every kind of parent, the same decision.
func assertMatchesSDK(t *testing.T, got octrace.Sampler, gotDesc string, want sdktrace.Sampler) {
	t.Helper()
	if gotDesc != want.Description() {
		t.Errorf("description = %q, want the SDK's %q", gotDesc, want.Description())
	}
	if got == nil {
		t.Fatal("sampler is nil")
	}
	mismatches := 0
	for _, id := range probeIDs(300) {
		for _, p := range allParents {
			g, w := got(ocParams(id, p)).Sample, sdkSamples(want, id, p)
			if g != w {
				mismatches++
				if mismatches <= 5 {
					t.Errorf("trace id %x, parent %v: sampled = %v, the SDK's %s says %v", id, p, g, want.Description(), w)
				}
			}
		}
	}
	if mismatches > 5 {
		t.Errorf("... %d mismatches in all", mismatches)
	}
}
