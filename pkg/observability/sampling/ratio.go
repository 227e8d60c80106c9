package sampling

import (
	"encoding/binary"
	"fmt"

	"go.opencensus.io/trace"
)

// TraceIDRatioBased returns an OpenCensus sampler that decides as the
// OpenTelemetry Go SDK's TraceIDRatioBased(fraction) does, for every trace id:
//
//   - fraction >= 1 samples every trace and fraction <= 0 none;
//   - otherwise the last 8 bytes of the trace id (bytes 8 to 15, big-endian,
//     shifted right by one bit to a 63-bit number) are compared with the
//     bound fraction·2^63, truncated to an integer: the trace is sampled when
//     the number is below the bound.
//
// Note that OpenCensus' own ProbabilitySampler reads the first 8 bytes, so
// it decides differently for the same trace id; and it also follows a
// sampled parent. This sampler looks at the trace id only: wrap it in
// ParentBased to follow the parent's decision. A NaN fraction is neither
// >= 1 nor <= 0, so it reaches the bound computation, which is done exactly
// as the SDK does it, with the same result.
func TraceIDRatioBased(fraction float64) trace.Sampler {
	return traceIDRatio(fraction).sampler
}

// traceIDRatio is TraceIDRatioBased with the SDK's description:
// "TraceIDRatioBased{1}", "TraceIDRatioBased{0}" or the fraction in %g.
func traceIDRatio(fraction float64) choice {
	switch {
	case fraction >= 1:
		return choice{sampler: trace.AlwaysSample(), desc: "TraceIDRatioBased{1}"}
	case fraction <= 0:
		return choice{sampler: trace.NeverSample(), desc: "TraceIDRatioBased{0}"}
	}
	bound := uint64(fraction * (1 << 63))
	return choice{
		sampler: func(p trace.SamplingParameters) trace.SamplingDecision {
			x := binary.BigEndian.Uint64(p.TraceID[8:16]) >> 1
			return trace.SamplingDecision{Sample: x < bound}
		},
		desc: fmt.Sprintf("TraceIDRatioBased{%g}", fraction),
	}
}
