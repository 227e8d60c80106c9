package otlp

import (
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
)

// The traces encoder: OpenCensus spans (trace.SpanData, as an exporter
// receives them) as an OTLP ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1), the body of a gRPC Export call
// or of an HTTP POST to /v1/traces with Content-Type
// application/x-protobuf.
//
// OpenCensus and OTLP model spans differently; each OpenCensus field is
// mapped as follows, following the OpenTelemetry OpenCensus bridge and the
// OpenTelemetry Go OTLP exporter where they decide:
//
//   - trace_id and span_id: the 16 and 8 bytes of the SpanContext, always
//     written, zero or not. parent_span_id: ParentSpanID, left out when it
//     is all zeros (a root span).
//   - trace_state: the Tracestate entries as the W3C tracestate header
//     writes them, "k1=v1,k2=v2", in their order; empty when there are
//     none.
//   - flags: the W3C trace flags (the low 8 bits of TraceOptions, the
//     sampled bit among them) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
//     (0x100), always, since OpenCensus knows whether the parent is remote
//     | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK (0x200) when HasRemoteParent.
//   - kind: SpanKindServer as SPAN_KIND_SERVER, SpanKindClient as
//     SPAN_KIND_CLIENT, anything else (SpanKindUnspecified) as
//     SPAN_KIND_INTERNAL, as the bridge maps it.
//   - start_time_unix_nano, end_time_unix_nano: the Unix nanoseconds of
//     StartTime and EndTime; a zero time, or one outside the years
//     1970-2262 that Unix nanoseconds hold, is written as 0 (unknown).
//   - attributes (of the span, its annotations and links): sorted by key,
//     for output that does not depend on map order; a string as
//     string_value, a bool as bool_value, an int64 as int_value, a float64
//     as double_value. A value of any other type (OpenCensus makes none)
//     is left out and counted in dropped_attributes_count, which adds
//     DroppedAttributeCount for the span.
//   - events: the Annotations and the MessageEvents, merged by time (each
//     list is in time order, as OpenCensus records them; an annotation
//     goes first on a tie). An annotation is an Event named by its Message
//     with its attributes. A message event is an Event named "message"
//     with the attributes of the OpenTelemetry RPC semantic conventions:
//     message.type "SENT" or "RECEIVED" (left out when unspecified),
//     message.id, message.uncompressed_size, message.compressed_size
//     (int_value, each left out when 0, i.e. unknown).
//     dropped_events_count is DroppedAnnotationCount +
//     DroppedMessageEventCount.
//   - links: trace_id, span_id and attributes; OTLP has no link type, so
//     Type is not written (nor does the bridge keep it), and neither
//     trace_state nor flags, which an OpenCensus link does not know.
//     dropped_links_count is DroppedLinkCount.
//   - status: always written, as the OpenTelemetry exporter does. Code 0
//     (OK in OpenCensus, which cannot tell "unset" from "ok") is
//     STATUS_CODE_UNSET without a message, OpenTelemetry's convention for
//     a span that did not fail; any other code is STATUS_CODE_ERROR with
//     Message.
//
// Dropped counts below 0 are written as 0, above 2^32-1 as 2^32-1.
// ChildSpanCount has no OTLP field and is not written.
//
// Encoding follows the rules of encode.go: the request decodes to the
// message google.golang.org/protobuf would encode for the same data and is
// exactly as long, strings are made valid UTF-8, and fields go in
// field-number order (so flags, field 16, ends each span).

// Field numbers of collector/trace/v1 and trace/v1.
const (
	requestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	resourceSpansResource  = 1 // ResourceSpans.resource
	resourceSpansScopes    = 2 // ResourceSpans.scope_spans
	resourceSpansSchemaURL = 3 // ResourceSpans.schema_url

	scopeSpansScope     = 1 // ScopeSpans.scope
	scopeSpansSpans     = 2 // ScopeSpans.spans
	scopeSpansSchemaURL = 3 // ScopeSpans.schema_url

	spanTraceID           = 1  // Span.trace_id
	spanSpanID            = 2  // Span.span_id
	spanTraceState        = 3  // Span.trace_state
	spanParentSpanID      = 4  // Span.parent_span_id
	spanName              = 5  // Span.name
	spanKind              = 6  // Span.kind
	spanStart             = 7  // Span.start_time_unix_nano
	spanEnd               = 8  // Span.end_time_unix_nano
	spanAttributes        = 9  // Span.attributes
	spanDroppedAttributes = 10 // Span.dropped_attributes_count
	spanEvents            = 11 // Span.events
	spanDroppedEvents     = 12 // Span.dropped_events_count
	spanLinks             = 13 // Span.links
	spanDroppedLinks      = 14 // Span.dropped_links_count
	spanStatus            = 15 // Span.status
	spanFlags             = 16 // Span.flags

	eventTime              = 1 // Span.Event.time_unix_nano
	eventName              = 2 // Span.Event.name
	eventAttributes        = 3 // Span.Event.attributes
	eventDroppedAttributes = 4 // Span.Event.dropped_attributes_count

	linkTraceID           = 1 // Span.Link.trace_id
	linkSpanID            = 2 // Span.Link.span_id
	linkAttributes        = 4 // Span.Link.attributes
	linkDroppedAttributes = 5 // Span.Link.dropped_attributes_count

	statusMessage = 2 // Status.message
	statusCode    = 3 // Status.code
)

// Values of trace/v1 enums and flags.
const (
	kindInternal = 1 // SPAN_KIND_INTERNAL
	kindServer   = 2 // SPAN_KIND_SERVER
	kindClient   = 3 // SPAN_KIND_CLIENT

	statusError = 2 // STATUS_CODE_ERROR (STATUS_CODE_UNSET is 0)

	flagsTrace       = 0xff  // SPAN_FLAGS_TRACE_FLAGS_MASK
	flagsHasIsRemote = 0x100 // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
	flagsIsRemote    = 0x200 // SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
)

// The event a MessageEvent becomes: its name and attribute keys and
// values (the OpenTelemetry RPC semantic conventions).
const (
	messageEventName    = "message"
	messageType         = "message.type"
	messageID           = "message.id"
	messageUncompressed = "message.uncompressed_size"
	messageCompressed   = "message.compressed_size"
	messageTypeSent     = "SENT"
	messageTypeReceived = "RECEIVED"
)

const (
	// attrScratch is how many attributes of a span, annotation or link
	// are sorted without allocating: OpenCensus' default limit per span.
	attrScratch = 32

	// maxUnixNanoSeconds bounds the Unix seconds of a time that Unix
	// nanoseconds hold.
	maxUnixNanoSeconds = math.MaxInt64 / int64(time.Second)
)

// SpanScope is the instrumentation scope of a group of spans (an
// InstrumentationScope and its schema URL) and the spans.
type SpanScope struct {
	Name, Version, SchemaURL string
	Spans                    []*trace.SpanData
}

// AppendTraceRequest appends to b an ExportTraceServiceRequest that holds
// one ResourceSpans: a Resource with resource as its attributes (in the
// order given), resourceSchemaURL, and a ScopeSpans for each of scopes, in
// the order given, with its spans in the order given (a nil span is
// skipped). It returns the extended buffer. How each span is mapped is
// described at the top of this file.
//
// A buffer with room for the whole request is not reallocated, and the
// encoding allocates nothing then, unless a span, annotation or link has
// more than 32 attributes (their keys are sorted in a scratch array of 32
// on the stack; more spill to the heap). Each nested message longer than
// 127 bytes is moved once by the bytes of its length (pbwire.EndMessage):
// for a batch, the ResourceSpans and each ScopeSpans are copied once more.
func AppendTraceRequest(b []byte, resource []metricdata.Attr, resourceSchemaURL string, scopes []SpanScope) []byte {
	b, mark := pbwire.BeginMessage(b, requestResourceSpans)
	b = AppendResource(b, resourceSpansResource, resource)
	for i := range scopes {
		b = appendScopeSpans(b, &scopes[i])
	}
	b = appendString(b, resourceSpansSchemaURL, resourceSchemaURL)
	return pbwire.EndMessage(b, mark)
}

func appendScopeSpans(b []byte, s *SpanScope) []byte {
	b, mark := pbwire.BeginMessage(b, resourceSpansScopes)
	b = AppendScope(b, scopeSpansScope, s.Name, s.Version)
	for _, sd := range s.Spans {
		if sd != nil {
			b = appendSpan(b, sd)
		}
	}
	b = appendString(b, scopeSpansSchemaURL, s.SchemaURL)
	return pbwire.EndMessage(b, mark)
}

func appendSpan(b []byte, sd *trace.SpanData) []byte {
	b, mark := pbwire.BeginMessage(b, scopeSpansSpans)
	b = appendID(b, spanTraceID, sd.TraceID[:])
	b = appendID(b, spanSpanID, sd.SpanID[:])
	b = appendTraceState(b, spanTraceState, sd.Tracestate.Entries())
	if sd.ParentSpanID != (trace.SpanID{}) {
		b = appendID(b, spanParentSpanID, sd.ParentSpanID[:])
	}
	b = appendString(b, spanName, sd.Name)
	b = appendVarint(b, spanKind, spanKindOf(sd.SpanKind))
	b = appendFixed64(b, spanStart, unixNano(sd.StartTime))
	b = appendFixed64(b, spanEnd, unixNano(sd.EndTime))
	b, dropped := appendAttrMap(b, spanAttributes, sd.Attributes)
	b = appendVarint(b, spanDroppedAttributes, count(sd.DroppedAttributeCount, dropped))
	b = appendEvents(b, sd.Annotations, sd.MessageEvents)
	b = appendVarint(b, spanDroppedEvents, count(sd.DroppedAnnotationCount, sd.DroppedMessageEventCount))
	for i := range sd.Links {
		b = appendLink(b, &sd.Links[i])
	}
	b = appendVarint(b, spanDroppedLinks, count(sd.DroppedLinkCount, 0))
	b = appendStatus(b, &sd.Status)
	flags := uint32(sd.TraceOptions)&flagsTrace | flagsHasIsRemote
	if sd.HasRemoteParent {
		flags |= flagsIsRemote
	}
	b = pbwire.AppendTag(b, spanFlags, pbwire.Fixed32Type)
	b = pbwire.AppendFixed32(b, flags)
	return pbwire.EndMessage(b, mark)
}

// appendID appends bytes field num holding id, whatever its value.
func appendID(b []byte, num uint32, id []byte) []byte {
	b = pbwire.AppendTag(b, num, pbwire.BytesType)
	b = pbwire.AppendVarint(b, uint64(len(id)))
	return append(b, id...)
}

// appendTraceState appends string field num holding entries as a W3C
// tracestate header value, unless there are none.
func appendTraceState(b []byte, num uint32, entries []tracestate.Entry) []byte {
	if len(entries) == 0 {
		return b
	}
	n := len(entries) - 1 // the commas
	for _, e := range entries {
		k, _ := utf8Len(e.Key)
		v, _ := utf8Len(e.Value)
		n += k + 1 + v
	}
	b = pbwire.AppendTag(b, num, pbwire.BytesType)
	b = pbwire.AppendVarint(b, uint64(n))
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValidUTF8(b, e.Key)
		b = append(b, '=')
		b = appendValidUTF8(b, e.Value)
	}
	return b
}

// appendValidUTF8 appends s, not length-prefixed, with each byte that is
// not part of valid UTF-8 written as U+FFFD (as utf8Len counts it).
func appendValidUTF8(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(b, s...)
	}
	for _, r := range s {
		b = utf8.AppendRune(b, r)
	}
	return b
}

// spanKindOf is the OTLP SpanKind of an OpenCensus span kind.
func spanKindOf(kind int) uint64 {
	switch kind {
	case trace.SpanKindServer:
		return kindServer
	case trace.SpanKindClient:
		return kindClient
	}
	return kindInternal
}

// unixNano is t in Unix nanoseconds, or 0 for the zero time and for times
// Unix nanoseconds cannot hold (before 1970 or after 2262).
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	if s := t.Unix(); s < 0 || s >= maxUnixNanoSeconds {
		return 0
	}
	return uint64(t.UnixNano())
}

// count is the dropped count a + b as a uint32 field's value, clamped to
// [0, 2^32-1].
func count(a, b int) uint64 {
	clamp := func(n int) uint64 { return uint64(min(max(n, 0), math.MaxUint32)) }
	return min(clamp(a)+clamp(b), math.MaxUint32)
}

// attrKV is an OpenCensus attribute being sorted.
type attrKV struct {
	key   string
	value any
}

// appendAttrMap appends attrs as the repeated KeyValue field num, sorted
// by key, and returns the number of attributes left out for their type.
func appendAttrMap(b []byte, num uint32, attrs map[string]any) ([]byte, int) {
	if len(attrs) == 0 {
		return b, 0
	}
	var scratch [attrScratch]attrKV
	kvs := scratch[:0]
	for k, v := range attrs {
		kvs = append(kvs, attrKV{k, v})
	}
	slices.SortFunc(kvs, func(x, y attrKV) int { return strings.Compare(x.key, y.key) })
	dropped := 0
	for i := range kvs {
		switch v := kvs[i].value.(type) {
		case string:
			b = AppendStringKeyValue(b, num, kvs[i].key, v)
		case bool:
			b = AppendBoolKeyValue(b, num, kvs[i].key, v)
		case int64:
			b = AppendIntKeyValue(b, num, kvs[i].key, v)
		case float64:
			b = AppendDoubleKeyValue(b, num, kvs[i].key, v)
		default:
			dropped++
		}
	}
	return b, dropped
}

// appendEvents appends the annotations and message events as Span.events,
// merged by time.
func appendEvents(b []byte, annotations []trace.Annotation, messages []trace.MessageEvent) []byte {
	i, j := 0, 0
	for i < len(annotations) || j < len(messages) {
		if j == len(messages) || i < len(annotations) && !messages[j].Time.Before(annotations[i].Time) {
			b = appendAnnotation(b, &annotations[i])
			i++
		} else {
			b = appendMessageEvent(b, &messages[j])
			j++
		}
	}
	return b
}

func appendAnnotation(b []byte, a *trace.Annotation) []byte {
	b, mark := pbwire.BeginMessage(b, spanEvents)
	b = appendFixed64(b, eventTime, unixNano(a.Time))
	b = appendString(b, eventName, a.Message)
	b, dropped := appendAttrMap(b, eventAttributes, a.Attributes)
	b = appendVarint(b, eventDroppedAttributes, count(dropped, 0))
	return pbwire.EndMessage(b, mark)
}

func appendMessageEvent(b []byte, m *trace.MessageEvent) []byte {
	b, mark := pbwire.BeginMessage(b, spanEvents)
	b = appendFixed64(b, eventTime, unixNano(m.Time))
	b = appendString(b, eventName, messageEventName)
	switch m.EventType {
	case trace.MessageEventTypeSent:
		b = AppendStringKeyValue(b, eventAttributes, messageType, messageTypeSent)
	case trace.MessageEventTypeRecv:
		b = AppendStringKeyValue(b, eventAttributes, messageType, messageTypeReceived)
	}
	b = appendIntAttr(b, messageID, m.MessageID)
	b = appendIntAttr(b, messageUncompressed, m.UncompressedByteSize)
	b = appendIntAttr(b, messageCompressed, m.CompressedByteSize)
	return pbwire.EndMessage(b, mark)
}

// appendIntAttr appends an event's int attribute key unless v is 0.
func appendIntAttr(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return AppendIntKeyValue(b, eventAttributes, key, v)
}

func appendLink(b []byte, l *trace.Link) []byte {
	b, mark := pbwire.BeginMessage(b, spanLinks)
	b = appendID(b, linkTraceID, l.TraceID[:])
	b = appendID(b, linkSpanID, l.SpanID[:])
	b, dropped := appendAttrMap(b, linkAttributes, l.Attributes)
	b = appendVarint(b, linkDroppedAttributes, count(dropped, 0))
	return pbwire.EndMessage(b, mark)
}

// appendStatus appends Span.status: UNSET for code 0, ERROR with the
// message otherwise.
func appendStatus(b []byte, s *trace.Status) []byte {
	b, mark := pbwire.BeginMessage(b, spanStatus)
	if s.Code != 0 {
		b = appendString(b, statusMessage, s.Message)
		b = appendVarint(b, statusCode, statusError)
	}
	return pbwire.EndMessage(b, mark)
}
