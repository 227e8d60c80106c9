// Package spanexport turns finished OpenCensus spans into the newest
// Knative generation's span output. It glues existing parts together and
// adds no encoding of its own:
//
//   - OTLP batches spans with a spanbatch.Processor (the OpenTelemetry
//     SDK's batch span processor: bounded queue, drops when full), groups
//     each batch by instrumentation scope, encodes it with
//     otlp.AppendTraceRequest and sends it through an OTLP client
//     (*otlp.Client: gRPC or HTTP/protobuf).
//   - Stdout prints each span at once as the OpenTelemetry SDK's stdout
//     trace exporter would (stdouttrace.AppendSpan), one Write per span.
//
// Both are trace.Exporters whose ExportSpan is safe for concurrent use and
// never blocks on the network: OTLP's only queues (allocation-free, O(1)),
// Stdout's costs one encoding and one Write to its writer.
//
// A Source says what every span is attributed to: the process's resource
// and the tracers' scopes, with a function that picks a span's scope.
package spanexport
