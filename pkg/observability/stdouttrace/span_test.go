package stdouttrace

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	octrace "go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// The base span: a sampled root server span.
var (
	baseTraceID  = [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	baseSpanID   = [8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	parentSpanID = [8]byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
	linkTraceID  = [16]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x0f}
	linkSpanID   = [8]byte{0xa0, 0, 0, 0, 0, 0, 0, 0x0a}

	baseName  = "GET"
	baseStart = time.Date(2026, 11, 12, 13, 14, 15, 123456789, time.UTC)
	baseEnd   = baseStart.Add(1500 * time.Microsecond)

	baseResource = []metricdata.Attr{
		metricdata.String("container.name", "queue-proxy"),
		metricdata.String("k8s.namespace.name", "default"),
		metricdata.String("service.name", "hello"),
		metricdata.String("telemetry.sdk.language", "go"),
	}
	baseScope = Scope{Name: "knative.dev/serving/pkg/queue"}
)

func baseOC() *octrace.SpanData {
	return &octrace.SpanData{
		SpanContext: octrace.SpanContext{TraceID: baseTraceID, SpanID: baseSpanID, TraceOptions: 1},
		Name:        baseName,
		SpanKind:    octrace.SpanKindServer,
		StartTime:   baseStart,
		EndTime:     baseEnd,
	}
}

func ocTracestate(t *testing.T, entries ...tracestate.Entry) *tracestate.Tracestate {
	t.Helper()
	ts, err := tracestate.New(nil, entries...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// spanCase is an OpenCensus span and the OpenTelemetry span it stands for.
type spanCase struct {
	name     string
	oc       func(*octrace.SpanData) // changes to the base span
	sdk      sdkSpan
	resource []metricdata.Attr // nil: baseResource
	scope    *Scope            // nil: baseScope
	// unprintable: the SDK's encoder fails on the span and prints nothing.
	unprintable bool
}

func spanCases(t *testing.T) []spanCase {
	zone := time.FixedZone("CET", 3600+30*60)
	at := func(d time.Duration) time.Time { return baseStart.Add(d) }
	remoteParent := otelSpanContext(t, baseTraceID, parentSpanID, oteltrace.FlagsSampled, "", true)
	return []spanCase{{
		name: "root server span, nothing recorded",
	}, {
		name: "server span with a remote parent and tracestate",
		oc: func(s *octrace.SpanData) {
			s.ParentSpanID = parentSpanID
			s.HasRemoteParent = true
			s.Tracestate = ocTracestate(t, tracestate.Entry{Key: "vendor", Value: "a<b&c>d"}, tracestate.Entry{Key: "k@x", Value: "1"})
		},
		sdk: sdkSpan{parent: otelSpanContext(t, baseTraceID, parentSpanID, oteltrace.FlagsSampled, "vendor=a<b&c>d,k@x=1", true)},
	}, {
		name: "internal span (OpenCensus unspecified kind) with a local parent",
		oc: func(s *octrace.SpanData) {
			s.Name = "kn.queueproxy.proxy"
			s.SpanKind = octrace.SpanKindUnspecified
			s.ParentSpanID = parentSpanID
		},
		sdk: sdkSpan{
			name: "kn.queueproxy.proxy", kind: oteltrace.SpanKindInternal,
			parent: otelSpanContext(t, baseTraceID, parentSpanID, oteltrace.FlagsSampled, "", false),
		},
	}, {
		name: "client span with semconv attributes of every type",
		oc: func(s *octrace.SpanData) {
			s.Name = "HTTP GET"
			s.SpanKind = octrace.SpanKindClient
			s.ParentSpanID = parentSpanID
			s.HasRemoteParent = true
			s.Attributes = map[string]any{
				"url.full":                  "http://127.0.0.1:8080/path?q=1&r=<2>",
				"server.port":               int64(8080),
				"server.address":            "127.0.0.1",
				"http.response.status_code": int64(200),
				"negative":                  int64(math.MinInt64),
				"kn.retry":                  false,
				"kn.ok":                     true,
				"ratio":                     0.25,
			}
		},
		sdk: sdkSpan{
			name: "HTTP GET", kind: oteltrace.SpanKindClient, parent: remoteParent,
			attrs: []attribute.KeyValue{
				attribute.Int64("http.response.status_code", 200),
				attribute.Bool("kn.ok", true),
				attribute.Bool("kn.retry", false),
				attribute.Int64("negative", math.MinInt64),
				attribute.Float64("ratio", 0.25),
				attribute.String("server.address", "127.0.0.1"),
				attribute.Int64("server.port", 8080),
				attribute.String("url.full", "http://127.0.0.1:8080/path?q=1&r=<2>"),
			},
		},
	}, {
		name: "float attributes in both notations",
		oc: func(s *octrace.SpanData) {
			s.Attributes = map[string]any{
				"a.zero": 0.0, "b.negzero": math.Copysign(0, -1), "c.tiny": 1e-7, "d.small": 1e-6,
				"e.big": 1e21, "f.below": 1e20 + 1, "g.pi": math.Pi, "h.denormal": 5e-324,
				"i.max": math.MaxFloat64, "j.neg": -1.5e-10, "k.int": 42.0,
			}
		},
		sdk: sdkSpan{attrs: []attribute.KeyValue{
			attribute.Float64("a.zero", 0), attribute.Float64("b.negzero", math.Copysign(0, -1)),
			attribute.Float64("c.tiny", 1e-7), attribute.Float64("d.small", 1e-6),
			attribute.Float64("e.big", 1e21), attribute.Float64("f.below", 1e20+1),
			attribute.Float64("g.pi", math.Pi), attribute.Float64("h.denormal", 5e-324),
			attribute.Float64("i.max", math.MaxFloat64), attribute.Float64("j.neg", -1.5e-10),
			attribute.Float64("k.int", 42),
		}},
	}, {
		name: "error status with a description",
		oc: func(s *octrace.SpanData) {
			s.Status = octrace.Status{Code: 2, Message: `upstream "reset" <EOF>`}
		},
		sdk: sdkSpan{code: codes.Error, description: `upstream "reset" <EOF>`},
	}, {
		name: "OpenCensus OK status with a message is unset without description",
		oc: func(s *octrace.SpanData) {
			s.Status = octrace.Status{Code: 0, Message: "fine"}
		},
		sdk: sdkSpan{code: codes.Unset, description: "fine"},
	}, {
		name: "annotations and message events merged by time",
		oc: func(s *octrace.SpanData) {
			s.Annotations = []octrace.Annotation{
				{Time: at(10 * time.Microsecond), Message: "admitted", Attributes: map[string]any{"depth": int64(3), "b": true}},
				{Time: at(30 * time.Microsecond), Message: "tie goes to annotations"},
				{Time: at(50 * time.Microsecond), Message: "", Attributes: map[string]any{"": "empty key kept"}},
			}
			s.MessageEvents = []octrace.MessageEvent{
				{Time: at(20 * time.Microsecond), EventType: octrace.MessageEventTypeSent, MessageID: 1, UncompressedByteSize: 100, CompressedByteSize: 40},
				{Time: at(30 * time.Microsecond), EventType: octrace.MessageEventTypeRecv, MessageID: 2, UncompressedByteSize: 7},
			}
		},
		sdk: sdkSpan{events: []sdkEvent{
			{"admitted", at(10 * time.Microsecond), []attribute.KeyValue{attribute.Bool("b", true), attribute.Int64("depth", 3)}},
			{"message send", at(20 * time.Microsecond), []attribute.KeyValue{attribute.Int64("uncompressed byte size", 100), attribute.Int64("compressed byte size", 40)}},
			{"tie goes to annotations", at(30 * time.Microsecond), nil},
			{"message receive", at(30 * time.Microsecond), []attribute.KeyValue{attribute.Int64("uncompressed byte size", 7), attribute.Int64("compressed byte size", 0)}},
			{"", at(50 * time.Microsecond), []attribute.KeyValue{attribute.String("", "empty key kept")}},
		}},
	}, {
		name: "links, an invalid one without attributes ignored",
		oc: func(s *octrace.SpanData) {
			s.Links = []octrace.Link{
				{TraceID: linkTraceID, SpanID: linkSpanID, Type: octrace.LinkTypeParent, Attributes: map[string]any{"why": "batch", "n": int64(2)}},
				{TraceID: linkTraceID, SpanID: linkSpanID, Type: octrace.LinkTypeChild},
				{TraceID: linkTraceID},
				{SpanID: linkSpanID, Attributes: map[string]any{"kept": true}},
			}
		},
		sdk: sdkSpan{links: []oteltrace.Link{
			{SpanContext: otelSpanContext(t, linkTraceID, linkSpanID, 0, "", false), Attributes: []attribute.KeyValue{attribute.Int64("n", 2), attribute.String("why", "batch")}},
			{SpanContext: otelSpanContext(t, linkTraceID, linkSpanID, 0, "", false)},
			{SpanContext: otelSpanContext(t, linkTraceID, [8]byte{}, 0, "", false)},
			{SpanContext: otelSpanContext(t, [16]byte{}, linkSpanID, 0, "", false), Attributes: []attribute.KeyValue{attribute.Bool("kept", true)}},
		}},
	}, {
		name: "only an ignored link",
		oc: func(s *octrace.SpanData) {
			s.Links = []octrace.Link{{}}
		},
		sdk: sdkSpan{links: []oteltrace.Link{{}}},
	}, {
		name: "unicode and escaping",
		oc: func(s *octrace.SpanData) {
			s.Name = "/päth/日本/😀 <script>&amp;"
			s.Attributes = map[string]any{
				"ctl":     "a\x00b\x01c\bd\fe\nf\rg\th\x1f\x7f",
				"quote":   `say "hi" \ bye`,
				"sep":     "line\u2028para\u2029end",
				"invalid": "bad\xffutf8\xe2\x82 cut\xc3",
				"ключ":    "значение",
			}
		},
		sdk: sdkSpan{
			name: "/päth/日本/😀 <script>&amp;",
			attrs: []attribute.KeyValue{
				attribute.String("ctl", "a\x00b\x01c\bd\fe\nf\rg\th\x1f\x7f"),
				attribute.String("invalid", "bad\xffutf8\xe2\x82 cut\xc3"),
				attribute.String("quote", `say "hi" \ bye`),
				attribute.String("sep", "line\u2028para\u2029end"),
				attribute.String("ключ", "значение"),
			},
		},
	}, {
		name: "empty key dropped and counted, unknown type as the bridge has it",
		oc: func(s *octrace.SpanData) {
			s.Attributes = map[string]any{"": "x", "odd": int32(7), "fine": "y"}
			s.DroppedAttributeCount = 1
		},
		sdk: sdkSpan{
			attrs: []attribute.KeyValue{
				attribute.String("", "x"), attribute.String("fine", "y"), attribute.String("odd", "unknown"),
				attribute.String("over", "limit"),
			},
			limits: &sdktrace.SpanLimits{AttributeCountLimit: 2, EventCountLimit: -1, LinkCountLimit: -1,
				AttributeValueLengthLimit: -1, AttributePerEventCountLimit: -1, AttributePerLinkCountLimit: -1},
		},
	}, {
		name: "dropped counts and child spans",
		oc: func(s *octrace.SpanData) {
			s.Annotations = []octrace.Annotation{{Time: at(time.Microsecond), Message: "kept"}}
			s.DroppedAnnotationCount = 1
			s.DroppedMessageEventCount = 2
			s.Links = []octrace.Link{{TraceID: linkTraceID, SpanID: linkSpanID}}
			s.DroppedLinkCount = 1
			s.ChildSpanCount = 2
		},
		sdk: sdkSpan{
			events: []sdkEvent{
				{name: "evicted 1", at: baseStart}, {name: "evicted 2", at: baseStart}, {name: "evicted 3", at: baseStart},
				{name: "kept", at: at(time.Microsecond)},
			},
			links: []oteltrace.Link{
				{SpanContext: otelSpanContext(t, linkTraceID, parentSpanID, 0, "", false)},
				{SpanContext: otelSpanContext(t, linkTraceID, linkSpanID, 0, "", false)},
			},
			children: 2,
			limits: &sdktrace.SpanLimits{AttributeCountLimit: -1, EventCountLimit: 1, LinkCountLimit: 1,
				AttributeValueLengthLimit: -1, AttributePerEventCountLimit: -1, AttributePerLinkCountLimit: -1},
		},
	}, {
		name: "times in another zone, trailing zeros trimmed",
		oc: func(s *octrace.SpanData) {
			s.StartTime = time.Date(2026, 1, 2, 3, 4, 5, 120000000, zone)
			s.EndTime = time.Date(2026, 1, 2, 3, 4, 6, 0, zone)
			s.Annotations = []octrace.Annotation{{Time: time.Date(2026, 1, 2, 3, 4, 5, 500, zone), Message: "m"}}
		},
		sdk: sdkSpan{
			start:  time.Date(2026, 1, 2, 3, 4, 5, 120000000, zone),
			end:    time.Date(2026, 1, 2, 3, 4, 6, 0, zone),
			events: []sdkEvent{{name: "m", at: time.Date(2026, 1, 2, 3, 4, 5, 500, zone)}},
		},
	}, {
		name: "option bits beyond sampled are dropped",
		oc: func(s *octrace.SpanData) {
			s.TraceOptions = 0x03
		},
	}, {
		name:     "scope with version, schema URL and attributes; unsorted resource with duplicates",
		resource: []metricdata.Attr{metricdata.String("z", "last"), metricdata.Int("a", 1), metricdata.String("", "dropped"), metricdata.String("z", "wins"), metricdata.Int("m", -2)},
		scope: &Scope{
			Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.63.0",
			SchemaURL:  "https://opentelemetry.io/schemas/1.37.0",
			Attributes: []metricdata.Attr{metricdata.String("y", "<2>"), metricdata.Int("x", 1)},
		},
	}, {
		name:     "empty resource and default tracer name",
		resource: []metricdata.Attr{},
		scope:    &Scope{},
	}, {
		name:     "server span as the newest generation records it (the benchmark's)",
		oc:       func(s *octrace.SpanData) { *s = *benchSpan() },
		sdk:      sdkSpan{parent: remoteParent, attrs: otelAttrsFromMap(benchAttrs)},
		resource: benchResource,
		scope:    &Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.63.0"},
	}, {
		name:  "scope attributes with an empty key and a duplicate",
		scope: &Scope{Name: "s", Attributes: []metricdata.Attr{metricdata.Int("k", 1), metricdata.String("", "e"), metricdata.Int("k", 2)}},
	}, {
		name: "a NaN attribute makes the span unprintable",
		oc: func(s *octrace.SpanData) {
			s.Attributes = map[string]any{"nan": math.NaN()}
		},
		sdk:         sdkSpan{attrs: []attribute.KeyValue{attribute.Float64("nan", math.NaN())}},
		unprintable: true,
	}, {
		name: "an infinite event attribute makes the span unprintable",
		oc: func(s *octrace.SpanData) {
			s.Annotations = []octrace.Annotation{{Time: baseStart, Message: "m", Attributes: map[string]any{"inf": math.Inf(-1)}}}
		},
		sdk:         sdkSpan{events: []sdkEvent{{"m", baseStart, []attribute.KeyValue{attribute.Float64("inf", math.Inf(-1))}}}},
		unprintable: true,
	}, {
		name: "a time after year 9999 makes the span unprintable",
		oc: func(s *octrace.SpanData) {
			s.EndTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		},
		sdk:         sdkSpan{start: baseStart, end: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		unprintable: true,
	}, {
		name: "a zone offset of a day makes the span unprintable",
		oc: func(s *octrace.SpanData) {
			s.StartTime = baseStart.In(time.FixedZone("far", 24*3600))
		},
		sdk:         sdkSpan{start: baseStart.In(time.FixedZone("far", 24*3600)), end: baseEnd},
		unprintable: true,
	}, {
		name: "a zone offset just under a day is printed",
		oc: func(s *octrace.SpanData) {
			s.StartTime = baseStart.In(time.FixedZone("near", -(24*3600 - 1)))
		},
		sdk: sdkSpan{start: baseStart.In(time.FixedZone("near", -(24*3600 - 1))), end: baseEnd},
	}}
}

// TestAppendSpanMatchesSDK compares each line byte for byte with the one
// the OpenTelemetry SDK's stdout exporter prints for the equivalent span.
func TestAppendSpanMatchesSDK(t *testing.T) {
	for _, c := range spanCases(t) {
		t.Run(c.name, func(t *testing.T) {
			s := baseOC()
			if c.oc != nil {
				c.oc(s)
			}
			resource, scope := baseResource, baseScope
			if c.resource != nil {
				resource = c.resource
			}
			if c.scope != nil {
				scope = *c.scope
			}
			want := sdkLine(t, c.sdk, resource, scope)
			if (want == "") != c.unprintable {
				t.Fatalf("the SDK printed %q; the case expects unprintable=%v", want, c.unprintable)
			}
			got := string(AppendSpan([]byte("prefix"), s, resource, scope))
			if !strings.HasPrefix(got, "prefix") {
				t.Fatalf("AppendSpan did not append to b: %q", got)
			}
			if got = strings.TrimPrefix(got, "prefix"); got != want {
				t.Errorf("AppendSpan line differs from the SDK's at byte %d\n got: %s\nwant: %s", diffAt(got, want), got, want)
			}
		})
	}
}

// diffAt returns the index of the first byte where a and b differ.
func diffAt(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// otelAttrsFromMap converts string and int64 attributes to the SDK's, in
// key order.
func otelAttrsFromMap(m map[string]any) []attribute.KeyValue {
	var out []attribute.KeyValue
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case string:
			out = append(out, attribute.String(k, v))
		case int64:
			out = append(out, attribute.Int64(k, v))
		}
	}
	return out
}
