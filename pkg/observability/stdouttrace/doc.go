// Package stdouttrace writes the newest generation's span lines: with
// tracing.protocol "stdout", Knative's newest queue-proxy prints one compact
// JSON object per span on stdout (CONTRACT.md §5.6), written by the
// OpenTelemetry Go SDK's stdout trace exporter
// (go.opentelemetry.io/otel/exporters/stdout/stdouttrace v1.47.0, default
// options: timestamps on, pretty printing off). That exporter encodes the
// SDK's tracetest.SpanStub with encoding/json's Encoder, so a line holds, in
// this order: Name, SpanContext, Parent, SpanKind, StartTime, EndTime,
// Attributes, Events, Links, Status, DroppedAttributes, DroppedEvents,
// DroppedLinks, ChildSpanCount, Resource, InstrumentationScope and
// InstrumentationLibrary (the same scope again), with encoding/json's
// escaping (including its HTML escaping of <, > and &).
//
// Our tracing engine is OpenCensus, so AppendSpan renders an OpenCensus
// *trace.SpanData as the line the SDK would print for the equivalent
// OpenTelemetry span. The mappings, which follow the OpenTelemetry
// OpenCensus bridge where it has one:
//
//   - SpanKind: OpenCensus unspecified (0) → 1 (internal; the SDK turns an
//     unspecified kind into internal), server (1) → 2, client (2) → 3.
//   - TraceFlags: "01" when the OpenCensus span is sampled, else "00" (other
//     option bits have no OpenTelemetry meaning and are dropped).
//   - TraceState: the OpenCensus tracestate entries as "k1=v1,k2=v2", in
//     their order.
//   - Parent: zero (all-zero IDs, flags "00", not remote) for a root span.
//     Otherwise the span's trace ID, ParentSpanID, the span's own flags and
//     tracestate (a child inherits both from its parent under the SDK's
//     samplers; OpenCensus does not keep the parent's), and Remote from
//     HasRemoteParent.
//   - Attributes: sorted by key (an OpenCensus map has no order; the SDK
//     keeps the order they were set in). string → STRING, bool → BOOL,
//     int64 → INT64, float64 → FLOAT64, anything else → STRING "unknown"
//     (as the bridge does). A span attribute with an empty key is invalid
//     to the SDK: it is dropped and counted in DroppedAttributes. Event and
//     link attributes are not validated by the SDK and are kept.
//   - Events: annotations become events named by their message; message
//     events become "message send" / "message receive" events with the INT64
//     attributes "uncompressed byte size" and "compressed byte size" (the
//     bridge's names; unspecified types count as received). Both lists are
//     merged by time, annotations first on equal times. DroppedEvents is the
//     sum of the two OpenCensus dropped counts.
//   - Links: the linked trace and span IDs with flags "00", no tracestate,
//     not remote; the OpenCensus link type has no OpenTelemetry equivalent
//     and is dropped. A link to an invalid span context without attributes
//     is ignored, as the SDK ignores it.
//   - Status: code 0 → "Unset" with no description; any other code →
//     "Error" with the OpenCensus message as description.
//   - Resource: the attributes sorted by key, the last one winning on a
//     duplicated key, empty keys dropped (resource.NewSchemaless).
//   - Scope: an empty name becomes the SDK's default tracer name; its
//     attributes are sorted and deduplicated as the resource's, but an
//     empty key is kept (the SDK does not validate them).
//
// The SDK's span limits (128 attributes, events and links) are not applied:
// OpenCensus' own defaults (32) are lower. A span the SDK's encoder could
// not encode (a NaN or infinite float attribute, a time outside years
// 0-9999) is not printed at all; AppendSpan then appends nothing.
//
// The package depends on OpenCensus and metricdata only: the binary never
// links the OpenTelemetry SDK; the tests compare against it.
package stdouttrace
