package sampling

import "go.opencensus.io/trace"

// choice is an OpenCensus sampler together with the description that the
// OpenTelemetry SDK's equivalent sampler gives itself (its Description
// method), so the startup log names the sampler as Knative's SDK would.
type choice struct {
	sampler trace.Sampler
	desc    string
}

// alwaysOn and alwaysOff are the SDK's AlwaysSample and NeverSample.
var (
	alwaysOn  = choice{sampler: trace.AlwaysSample(), desc: "AlwaysOnSampler"}
	alwaysOff = choice{sampler: trace.NeverSample(), desc: "AlwaysOffSampler"}
)
