// Package observability holds queue-proxy's OpenCensus instrumentation:
// the request metrics of Knative 1.15 (revision_request_count,
// revision_request_latencies, revision_app_request_*, revision_queue_depth,
// revision_go_*) with their Prometheus text exposition, and tracing
// (CONTRACT.md §5.3-§5.5).
//
// Each feature is a set of layers (func(http.Handler) http.Handler) that
// the composition root (pkg/queue/sharedmain) puts into the request chain
// only when the feature is configured, so that a disabled feature costs
// nothing per request.
//
// The package imports pkg/http (the response recorder); pkg/http must
// therefore not import it.
package observability
