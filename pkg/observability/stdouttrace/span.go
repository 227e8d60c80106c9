package stdouttrace

import (
	"strconv"

	"go.opencensus.io/trace"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// Scope is the instrumentation scope of a span: the name, version and
// schema URL its tracer was created with, and the tracer's attributes.
type Scope struct {
	Name, Version, SchemaURL string
	Attributes               []metricdata.Attr
}

// defaultTracerName is the name the SDK gives a tracer created without one.
const defaultTracerName = "go.opentelemetry.io/otel/sdk/tracer"

// OpenTelemetry span kinds (go.opentelemetry.io/otel/trace.SpanKind).
const (
	kindInternal = 1
	kindServer   = 2
	kindClient   = 3
)

// AppendSpan appends to b the line the OpenTelemetry SDK's stdout trace
// exporter would print for s, created by a tracer of scope under a provider
// of resource, and a newline. It appends nothing when the SDK's encoder
// would have failed on the span (see the package documentation).
func AppendSpan(b []byte, s *trace.SpanData, resource []metricdata.Attr, scope Scope) []byte {
	e := encoder{b: b}
	e.span(s, resource, scope)
	if e.failed {
		return b
	}
	return append(e.b, '\n')
}

// encoder accumulates a line; failed records that encoding/json would
// have refused a value in it.
type encoder struct {
	b      []byte
	failed bool
}

// span appends the SpanStub object, its fields in the SDK's order.
func (e *encoder) span(s *trace.SpanData, resource []metricdata.Attr, scope Scope) {
	e.b = append(e.b, `{"Name":`...)
	e.b = appendString(e.b, s.Name)

	flags := s.TraceOptions & 1
	e.b = append(e.b, `,"SpanContext":`...)
	e.spanContext(s.TraceID[:], s.SpanID[:], byte(flags), s.Tracestate.Entries(), false)
	e.b = append(e.b, `,"Parent":`...)
	if s.ParentSpanID == (trace.SpanID{}) {
		e.spanContext(zeroID[:16], zeroID[:8], 0, nil, false)
	} else {
		e.spanContext(s.TraceID[:], s.ParentSpanID[:], byte(flags), s.Tracestate.Entries(), s.HasRemoteParent)
	}

	e.b = append(e.b, `,"SpanKind":`...)
	e.b = strconv.AppendInt(e.b, int64(spanKind(s.SpanKind)), 10)
	e.b = append(e.b, `,"StartTime":`...)
	e.time(s.StartTime)
	e.b = append(e.b, `,"EndTime":`...)
	e.time(s.EndTime)

	e.b = append(e.b, `,"Attributes":`...)
	dropped := e.ocAttrs(s.Attributes, true)
	e.b = append(e.b, `,"Events":`...)
	e.events(s.Annotations, s.MessageEvents)
	e.b = append(e.b, `,"Links":`...)
	e.links(s.Links)

	e.b = append(e.b, `,"Status":{"Code":`...)
	if s.Code == 0 {
		e.b = append(e.b, `"Unset","Description":""}`...)
	} else {
		e.b = append(e.b, `"Error","Description":`...)
		e.b = appendString(e.b, s.Message)
		e.b = append(e.b, '}')
	}

	e.b = append(e.b, `,"DroppedAttributes":`...)
	e.b = strconv.AppendInt(e.b, int64(s.DroppedAttributeCount+dropped), 10)
	e.b = append(e.b, `,"DroppedEvents":`...)
	e.b = strconv.AppendInt(e.b, int64(s.DroppedAnnotationCount+s.DroppedMessageEventCount), 10)
	e.b = append(e.b, `,"DroppedLinks":`...)
	e.b = strconv.AppendInt(e.b, int64(s.DroppedLinkCount), 10)
	e.b = append(e.b, `,"ChildSpanCount":`...)
	e.b = strconv.AppendInt(e.b, int64(s.ChildSpanCount), 10)

	e.b = append(e.b, `,"Resource":`...)
	e.attrSet(resource, true)
	e.b = append(e.b, `,"InstrumentationScope":`...)
	e.scope(scope)
	e.b = append(e.b, `,"InstrumentationLibrary":`...)
	e.scope(scope)
	e.b = append(e.b, '}')
}

// spanKind maps an OpenCensus span kind to OpenTelemetry's.
func spanKind(oc int) int {
	switch oc {
	case trace.SpanKindServer:
		return kindServer
	case trace.SpanKindClient:
		return kindClient
	default:
		return kindInternal
	}
}

// scope appends an instrumentation scope.
func (e *encoder) scope(s Scope) {
	name := s.Name
	if name == "" {
		name = defaultTracerName
	}
	e.b = append(e.b, `{"Name":`...)
	e.b = appendString(e.b, name)
	e.b = append(e.b, `,"Version":`...)
	e.b = appendString(e.b, s.Version)
	e.b = append(e.b, `,"SchemaURL":`...)
	e.b = appendString(e.b, s.SchemaURL)
	e.b = append(e.b, `,"Attributes":`...)
	e.attrSet(s.Attributes, false)
	e.b = append(e.b, '}')
}
