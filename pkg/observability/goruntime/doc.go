// Package goruntime produces the Go runtime and process metrics that the
// newest Knative queue-proxy (v0.51.0, CONTRACT.md §5.2-§5.3) exposes
// besides its request metrics, without the OpenTelemetry SDK and without the
// Prometheus client library in the binary:
//
//   - Runtime: the OpenTelemetry contrib runtime instrumentation's set
//     (go.memory.used, go.memory.limit, go.memory.allocated,
//     go.memory.allocations, go.memory.gc.goal, go.goroutine.count,
//     go.processor.limit, go.config.gogc), as a metricdata.Scope for the
//     OTLP encoder and the OpenTelemetry-style Prometheus exposition.
//   - PromDefaults: the families of the Prometheus client's default
//     registry (its Go collector, its process collector and the promhttp
//     handler's own two metrics), written directly in the text format 0.0.4.
//
// Both read runtime/metrics rather than runtime.ReadMemStats, so neither
// stops the world. The values, names, help texts and types are checked in
// tests against the real libraries (the Prometheus client is a test-only
// dependency; cmd/queue-proxy/deps_test.go keeps it out of the binary).
package goruntime
