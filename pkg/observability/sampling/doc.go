// Package sampling chooses the newest generation's trace sampler (Knative
// v0.51.0, CONTRACT.md §5.6) and provides it as an OpenCensus sampler whose
// decisions are those of the OpenTelemetry Go SDK (v1.47.0) samplers Knative
// uses, without the SDK in the binary.
//
//   - FromConfig applies Knative's rules to tracing.samplingRate and the
//     OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG variables, quirks
//     included, and describes the result the way the SDK's Description
//     method would, for the startup log.
//   - TraceIDRatioBased and ParentBased are the SDK's samplers of the same
//     name, decision for decision, for every trace id and parent.
//
// The SDK is a test-only dependency: the tests compare every decision with
// the real SDK's, including its handling of the environment.
package sampling
