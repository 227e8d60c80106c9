package stdouttrace

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelstdout "go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

func init() {
	// The SDK reports the spans its exporter fails to encode through the
	// global error handler; the tests expect them and check the output.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
}

// sdkSpan describes an OpenTelemetry span to record with the real SDK: the
// equivalent of a test case's OpenCensus span. Zero name, kind and times
// take the base span's.
type sdkSpan struct {
	name        string
	kind        oteltrace.SpanKind
	start, end  time.Time
	parent      oteltrace.SpanContext // invalid: a root span
	attrs       []attribute.KeyValue
	links       []oteltrace.Link
	events      []sdkEvent
	code        codes.Code
	description string
	children    int                  // child spans started (and never ended)
	limits      *sdktrace.SpanLimits // nil: the SDK's defaults
}

// sdkEvent is one span event.
type sdkEvent struct {
	name  string
	at    time.Time
	attrs []attribute.KeyValue
}

// fixedIDs is an IDGenerator that always returns the base span's IDs.
type fixedIDs struct{}

func (fixedIDs) NewIDs(context.Context) (oteltrace.TraceID, oteltrace.SpanID) {
	return oteltrace.TraceID(baseTraceID), oteltrace.SpanID(baseSpanID)
}

func (fixedIDs) NewSpanID(context.Context, oteltrace.TraceID) oteltrace.SpanID {
	return oteltrace.SpanID(baseSpanID)
}

// sdkLine records s with a TracerProvider of resource whose syncer is the
// real stdout exporter with its default options, under a tracer of scope,
// and returns what the exporter wrote.
func sdkLine(t *testing.T, s sdkSpan, resource []metricdata.Attr, scope Scope) string {
	t.Helper()
	var buf bytes.Buffer
	exporter, err := otelstdout.New(otelstdout.WithWriter(&buf))
	if err != nil {
		t.Fatal(err)
	}
	limits := sdktrace.NewSpanLimits()
	if s.limits != nil {
		limits = *s.limits
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exporter),
		sdktrace.WithResource(sdkresource.NewSchemaless(otelAttrs(resource)...)),
		sdktrace.WithIDGenerator(fixedIDs{}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithRawSpanLimits(limits),
	)
	defer func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	tracer := tp.Tracer(scope.Name,
		oteltrace.WithInstrumentationVersion(scope.Version),
		oteltrace.WithSchemaURL(scope.SchemaURL),
		oteltrace.WithInstrumentationAttributes(otelAttrs(scope.Attributes)...))

	name, kind, start, end := s.name, s.kind, s.start, s.end
	if name == "" {
		name = baseName
	}
	if kind == oteltrace.SpanKindUnspecified {
		kind = oteltrace.SpanKindServer
	}
	if start.IsZero() {
		start, end = baseStart, baseEnd
	}
	ctx := context.Background()
	if s.parent.IsValid() {
		ctx = oteltrace.ContextWithSpanContext(ctx, s.parent)
	}
	ctx, span := tracer.Start(ctx, name,
		oteltrace.WithSpanKind(kind),
		oteltrace.WithTimestamp(start),
		oteltrace.WithAttributes(s.attrs...),
		oteltrace.WithLinks(s.links...))
	for range s.children {
		tracer.Start(ctx, "child")
	}
	for _, ev := range s.events {
		span.AddEvent(ev.name, oteltrace.WithTimestamp(ev.at), oteltrace.WithAttributes(ev.attrs...))
	}
	span.SetStatus(s.code, s.description)
	span.End(oteltrace.WithTimestamp(end))
	return buf.String()
}

// otelAttrs converts metricdata attributes to the SDK's.
func otelAttrs(attrs []metricdata.Attr) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(attrs))
	for _, a := range attrs {
		if a.IsInt {
			out = append(out, attribute.Int64(a.Key, a.Int))
		} else {
			out = append(out, attribute.String(a.Key, a.Str))
		}
	}
	return out
}

// otelSpanContext builds an SDK span context; state is a W3C tracestate.
func otelSpanContext(t *testing.T, traceID [16]byte, spanID [8]byte, flags oteltrace.TraceFlags, state string, remote bool) oteltrace.SpanContext {
	t.Helper()
	ts, err := oteltrace.ParseTraceState(state)
	if err != nil {
		t.Fatal(err)
	}
	return oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: flags, TraceState: ts, Remote: remote,
	})
}
