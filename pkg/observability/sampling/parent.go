package sampling

import "go.opencensus.io/trace"

// ParentBased returns an OpenCensus sampler that decides as the OpenTelemetry
// Go SDK's ParentBased(root) with its default options:
//
//   - a span with a valid parent (non-zero trace and span ids), remote or
//     local, is sampled exactly when the parent is;
//   - any other span (a root, or a parent context with a zero id, which the
//     SDK does not count as a parent) is decided by root.
//
// OpenCensus does not consult the sampler for a local child unless a sampler
// is passed in the start options; the child then inherits the parent's
// decision, which is what ParentBased would decide anyway.
func ParentBased(root trace.Sampler) trace.Sampler {
	return func(p trace.SamplingParameters) trace.SamplingDecision {
		if isValid(p.ParentContext) {
			return trace.SamplingDecision{Sample: p.ParentContext.IsSampled()}
		}
		return root(p)
	}
}

// isValid reports whether sc counts as a parent for the SDK: both its trace
// id and its span id are non-zero.
func isValid(sc trace.SpanContext) bool {
	return sc.TraceID != (trace.TraceID{}) && sc.SpanID != (trace.SpanID{})
}

// parentBased is ParentBased with the SDK's description, which lists the
// root and the four default per-parent samplers.
func parentBased(root choice) choice {
	return choice{
		sampler: ParentBased(root.sampler),
		desc: "ParentBased{root:" + root.desc +
			",remoteParentSampled:" + alwaysOn.desc +
			",remoteParentNotSampled:" + alwaysOff.desc +
			",localParentSampled:" + alwaysOn.desc +
			",localParentNotSampled:" + alwaysOff.desc + "}",
	}
}
