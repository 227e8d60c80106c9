// Package otlp exports telemetry with the OpenTelemetry protocol (OTLP)
// without the OpenTelemetry SDK or grpc-go in the binary.
//
// It has two halves. The encoders (Append*) write OTLP protobuf messages
// (ExportMetricsServiceRequest and the messages it shares with traces)
// byte for byte as google.golang.org/protobuf would. The client ships
// such an encoded request to a collector: ResolveConfig merges Knative's
// OBSERVABILITY_CONFIG endpoint with the OTEL_EXPORTER_OTLP_* environment
// as Knative's queue-proxy and the OpenTelemetry Go exporters do, and a
// Client made by NewClient sends each request over gRPC (net/http's own
// HTTP/2 client, h2c or TLS) or HTTP/protobuf, with gzip, configured
// headers, per-attempt timeouts and the exporters' retry policy.
//
// Everything a collector sends back is untrusted input; its decoders are
// fuzzed against google.golang.org/protobuf's generated types.
package otlp
