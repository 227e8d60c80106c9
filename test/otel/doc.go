// Package otel checks queue-proxy's OTLP metrics and span export against the
// real consumers: the OpenTelemetry Collector's own OTLP receiver
// (go.opentelemetry.io/collector/receiver/otlpreceiver), over gRPC and over
// HTTP/protobuf, and, for the 1.15 generation's Zipkin spans, the contrib
// Zipkin receiver (receiver/zipkinreceiver).
//
// It is a module of its own so that the Collector's dependencies never reach
// the module graph of the queue-proxy binary. The tests build the real
// binary and the demo user app from the parent module (with the parent's
// go.mod, so the binary is the one that ships), start them as Knative's
// reconciler would (CONTRACT.md §1c) with OBSERVABILITY_CONFIG asking for
// OTLP request metrics, send traffic and probes through the main port, and
// assert on the pdata the receiver decoded (CONTRACT.md §5.2-§5.4): the
// resource, the three instrumentation scopes, names, units, kinds,
// temporality, buckets, attributes and counts. They also check delivery:
// gzip, OTEL_EXPORTER_OTLP_HEADERS, retry after a retryable failure, a dead
// collector not slowing requests, and the final export on SIGTERM. For
// spans (CONTRACT.md §5.5, §5.6): each generation's span tree per request
// (names, kinds, parents, attributes, status, scope, resource), with and
// without an incoming trace context, a request rejected by a full breaker,
// probes, and a span queue that fills against a collector that never
// answers (requests unaffected, drops logged).
//
// Run with: cd test/otel && go test -race -count=1 ./... (make test does).
// On the 2-core machine: about 1.5 minutes with a warm build cache, about
// 4 minutes from a cold one (compiling the Collector under -race
// dominates).
package otel
