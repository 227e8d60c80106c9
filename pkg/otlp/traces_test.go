package otlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// traceInput is what AppendTraceRequest is given.
type traceInput struct {
	resource  []metricdata.Attr
	schemaURL string
	scopes    []SpanScope
}

// checkTraceRequest encodes in after a prefix and checks that the prefix
// is kept, that the generated types decode the request to the oracle's
// message (wantTraceRequest) and that it is exactly as long as protobuf's
// own encoding of it (no field written twice, no padded varint). It
// returns the decoded request.
func checkTraceRequest(t testing.TB, in traceInput) *collectortrace.ExportTraceServiceRequest {
	t.Helper()
	prefix := []byte("prefix")
	out := AppendTraceRequest(append([]byte(nil), prefix...), in.resource, in.schemaURL, in.scopes)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("the buffer's contents were overwritten: %q", out[:len(prefix)])
	}
	body := out[len(prefix):]
	got := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	want := wantTraceRequest(in)
	if !proto.Equal(got, want) {
		t.Fatalf("decoded request differs\n got: %s\nwant: %s", prototext.Format(got), prototext.Format(want))
	}
	if n := proto.Size(want); len(body) != n {
		t.Fatalf("request of %d bytes, protobuf's is %d", len(body), n)
	}
	return got
}

// The oracle: the message AppendTraceRequest must produce, built with the
// generated OTLP types from the OpenCensus spans, field by field, as the
// mapping documented in traces.go says.

func wantTraceRequest(in traceInput) *collectortrace.ExportTraceServiceRequest {
	rs := &tracev1.ResourceSpans{
		Resource:  &resourcev1.Resource{Attributes: wantAttrs(in.resource)},
		SchemaUrl: utf8Fixed(in.schemaURL),
	}
	for _, s := range in.scopes {
		ss := &tracev1.ScopeSpans{
			Scope:     &commonv1.InstrumentationScope{Name: utf8Fixed(s.Name), Version: utf8Fixed(s.Version)},
			SchemaUrl: utf8Fixed(s.SchemaURL),
		}
		for _, sd := range s.Spans {
			if sd != nil {
				ss.Spans = append(ss.Spans, wantSpan(sd))
			}
		}
		rs.ScopeSpans = append(rs.ScopeSpans, ss)
	}
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{rs}}
}

func wantSpan(sd *trace.SpanData) *tracev1.Span {
	attrs, dropped := wantAttrMap(sd.Attributes)
	s := &tracev1.Span{
		TraceId:                append([]byte(nil), sd.TraceID[:]...),
		SpanId:                 append([]byte(nil), sd.SpanID[:]...),
		Name:                   utf8Fixed(sd.Name),
		Kind:                   tracev1.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano:      wantTime(sd.StartTime),
		EndTimeUnixNano:        wantTime(sd.EndTime),
		Attributes:             attrs,
		DroppedAttributesCount: wantCount(sd.DroppedAttributeCount, dropped),
		DroppedEventsCount:     wantCount(sd.DroppedAnnotationCount, sd.DroppedMessageEventCount),
		DroppedLinksCount:      wantCount(sd.DroppedLinkCount),
		Status:                 &tracev1.Status{},
		Flags:                  uint32(tracev1.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK) | uint32(sd.TraceOptions)&0xff,
	}
	var pairs []string
	for _, e := range sd.Tracestate.Entries() {
		pairs = append(pairs, e.Key+"="+e.Value)
	}
	s.TraceState = utf8Fixed(strings.Join(pairs, ","))
	if sd.ParentSpanID != (trace.SpanID{}) {
		s.ParentSpanId = append([]byte(nil), sd.ParentSpanID[:]...)
	}
	switch sd.SpanKind {
	case trace.SpanKindServer:
		s.Kind = tracev1.Span_SPAN_KIND_SERVER
	case trace.SpanKindClient:
		s.Kind = tracev1.Span_SPAN_KIND_CLIENT
	}
	if sd.HasRemoteParent {
		s.Flags |= uint32(tracev1.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	if sd.Code != 0 {
		s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: utf8Fixed(sd.Message)}
	}
	s.Events = wantEvents(sd)
	for _, l := range sd.Links {
		attrs, dropped := wantAttrMap(l.Attributes)
		s.Links = append(s.Links, &tracev1.Span_Link{
			TraceId:                append([]byte(nil), l.TraceID[:]...),
			SpanId:                 append([]byte(nil), l.SpanID[:]...),
			Attributes:             attrs,
			DroppedAttributesCount: uint32(dropped),
		})
	}
	return s
}

// wantEvents is the annotations, then the message events, stably sorted
// by time.
func wantEvents(sd *trace.SpanData) []*tracev1.Span_Event {
	type timed struct {
		at time.Time
		ev *tracev1.Span_Event
	}
	var all []timed
	for _, a := range sd.Annotations {
		attrs, dropped := wantAttrMap(a.Attributes)
		all = append(all, timed{a.Time, &tracev1.Span_Event{
			TimeUnixNano: wantTime(a.Time), Name: utf8Fixed(a.Message),
			Attributes: attrs, DroppedAttributesCount: uint32(dropped),
		}})
	}
	for _, m := range sd.MessageEvents {
		ev := &tracev1.Span_Event{TimeUnixNano: wantTime(m.Time), Name: "message"}
		switch m.EventType {
		case trace.MessageEventTypeSent:
			ev.Attributes = append(ev.Attributes, strKV("message.type", "SENT"))
		case trace.MessageEventTypeRecv:
			ev.Attributes = append(ev.Attributes, strKV("message.type", "RECEIVED"))
		}
		for _, kv := range []struct {
			key string
			v   int64
		}{{"message.id", m.MessageID}, {"message.uncompressed_size", m.UncompressedByteSize}, {"message.compressed_size", m.CompressedByteSize}} {
			if kv.v != 0 {
				ev.Attributes = append(ev.Attributes, &commonv1.KeyValue{Key: kv.key, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: kv.v}}})
			}
		}
		all = append(all, timed{m.Time, ev})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	var out []*tracev1.Span_Event
	for _, e := range all {
		out = append(out, e.ev)
	}
	return out
}

func strKV(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

// wantAttrMap is attrs sorted by key, and how many have a type OTLP is not
// given.
func wantAttrMap(attrs map[string]any) ([]*commonv1.KeyValue, int) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*commonv1.KeyValue
	dropped := 0
	for _, k := range keys {
		v := &commonv1.AnyValue{}
		switch x := attrs[k].(type) {
		case string:
			v.Value = &commonv1.AnyValue_StringValue{StringValue: utf8Fixed(x)}
		case bool:
			v.Value = &commonv1.AnyValue_BoolValue{BoolValue: x}
		case int64:
			v.Value = &commonv1.AnyValue_IntValue{IntValue: x}
		case float64:
			v.Value = &commonv1.AnyValue_DoubleValue{DoubleValue: x}
		default:
			dropped++
			continue
		}
		out = append(out, &commonv1.KeyValue{Key: utf8Fixed(k), Value: v})
	}
	return out, dropped
}

// wantTime is t in Unix nanoseconds when that can hold it, else 0.
func wantTime(t time.Time) uint64 {
	if t.IsZero() || t.Before(time.Unix(0, 0)) || !t.Before(time.Unix(0, math.MaxInt64).Truncate(time.Second)) {
		return 0
	}
	return uint64(t.UnixNano())
}

// wantCount is the sum of the non-negative counts, saturated at 2^32-1.
func wantCount(counts ...int) uint32 {
	sum := big.NewInt(0)
	for _, c := range counts {
		if c > 0 {
			sum.Add(sum, big.NewInt(int64(c)))
		}
	}
	if !sum.IsUint64() || sum.Uint64() > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(sum.Uint64())
}

// Fixtures.

var (
	t0       = time.Unix(1_700_000_000, 123_456_789)
	traceID  = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID   = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	parentID = trace.SpanID{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
)

// span is a sampled INTERNAL child span of 5 ms with no attributes;
// modify edits it.
func span(modify func(*trace.SpanData)) *trace.SpanData {
	sd := &trace.SpanData{
		SpanContext:  trace.SpanContext{TraceID: traceID, SpanID: spanID, TraceOptions: 1},
		ParentSpanID: parentID,
		Name:         "kn.queueproxy.proxy",
		StartTime:    t0,
		EndTime:      t0.Add(5 * time.Millisecond),
	}
	if modify != nil {
		modify(sd)
	}
	return sd
}

func mustTracestate(t testing.TB, entries ...tracestate.Entry) *tracestate.Tracestate {
	t.Helper()
	ts, err := tracestate.New(nil, entries...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func oneScope(spans ...*trace.SpanData) traceInput {
	return traceInput{
		resource: []metricdata.Attr{metricdata.String("service.name", "qp")},
		scopes:   []SpanScope{{Name: "knative.dev/serving/pkg/queue", Version: "1.19", Spans: spans}},
	}
}

func TestAppendTraceRequest(t *testing.T) {
	long := strings.Repeat("long-value/", 1600) // > 16 KiB: a three-byte length
	for _, tc := range []struct {
		name string
		in   traceInput
	}{
		{"nothing", traceInput{}},
		{"empty resource, empty scope", traceInput{scopes: []SpanScope{{}}}},
		{"resource and schema only", traceInput{
			resource:  []metricdata.Attr{metricdata.String("k8s.pod.name", "p-1"), metricdata.Int("n", -7)},
			schemaURL: "https://opentelemetry.io/schemas/1.26.0",
		}},
		{"internal child span", oneScope(span(nil))},
		{"server span, remote parent", oneScope(span(func(sd *trace.SpanData) {
			sd.SpanKind, sd.HasRemoteParent, sd.Name = trace.SpanKindServer, true, "GET"
		}))},
		{"client span", oneScope(span(func(sd *trace.SpanData) { sd.SpanKind, sd.Name = trace.SpanKindClient, "HTTP GET" }))},
		{"unknown kind", oneScope(span(func(sd *trace.SpanData) { sd.SpanKind = 7 }))},
		{"root span, not sampled", oneScope(span(func(sd *trace.SpanData) {
			sd.ParentSpanID, sd.TraceOptions = trace.SpanID{}, 0
		}))},
		{"trace options above 8 bits", oneScope(span(func(sd *trace.SpanData) { sd.TraceOptions = 0xfff03 }))},
		{"zero ids and times, empty name", oneScope(&trace.SpanData{})},
		{"times before 1970 and after 2262", oneScope(span(func(sd *trace.SpanData) {
			sd.StartTime, sd.EndTime = time.Unix(-1, 0), time.Unix(1<<40, 0)
		}))},
		{"tracestate", oneScope(span(func(sd *trace.SpanData) {
			sd.Tracestate = mustTracestate(t, tracestate.Entry{Key: "congo", Value: "t61rcWkgMzE"}, tracestate.Entry{Key: "rojo@vendor", Value: "00f067aa0ba902b7"})
		}))},
		{"every attribute type", oneScope(span(func(sd *trace.SpanData) {
			sd.Attributes = map[string]any{
				"http.request.method": "GET", "url.path": "/", "empty": "",
				"ok": true, "no": false,
				"http.response.status_code": int64(200), "zero": int64(0), "neg": int64(-1), "max": int64(math.MaxInt64),
				"ratio": 0.25, "dzero": 0.0, "inf": math.Inf(-1),
				"": "empty key",
			}
		}))},
		{"unsupported attribute types are dropped", oneScope(span(func(sd *trace.SpanData) {
			sd.Attributes = map[string]any{"int": 3, "a": "b", "nil": nil, "bytes": []byte("x")}
			sd.DroppedAttributeCount = 2
		}))},
		{"more attributes than the scratch", oneScope(span(func(sd *trace.SpanData) {
			sd.Attributes = map[string]any{}
			for i := range 100 {
				sd.Attributes["k"+strconv.Itoa(i)] = int64(i)
			}
		}))},
		{"annotations and message events, interleaved", oneScope(span(func(sd *trace.SpanData) {
			sd.Annotations = []trace.Annotation{
				{Time: t0, Message: "start", Attributes: map[string]any{"b": int64(2), "a": "x", "c": 3}},
				{Time: t0.Add(2 * time.Millisecond), Message: "tie with a message event"},
				{Time: t0.Add(4 * time.Millisecond)},
			}
			sd.MessageEvents = []trace.MessageEvent{
				{Time: t0.Add(time.Millisecond), EventType: trace.MessageEventTypeSent, MessageID: 1, UncompressedByteSize: 512, CompressedByteSize: 100},
				{Time: t0.Add(2 * time.Millisecond), EventType: trace.MessageEventTypeRecv, MessageID: 2, UncompressedByteSize: 64},
				{Time: t0.Add(3 * time.Millisecond)},
				{Time: t0.Add(9 * time.Millisecond), EventType: trace.MessageEventTypeRecv, MessageID: -5},
			}
			sd.DroppedAnnotationCount, sd.DroppedMessageEventCount = 3, 4
		}))},
		{"links", oneScope(span(func(sd *trace.SpanData) {
			sd.Links = []trace.Link{
				{TraceID: traceID, SpanID: parentID, Type: trace.LinkTypeParent, Attributes: map[string]any{"z": true, "y": 1.5, "bad": int32(1)}},
				{Type: trace.LinkTypeChild},
			}
			sd.DroppedLinkCount = 1
		}))},
		{"status error", oneScope(span(func(sd *trace.SpanData) { sd.Status = trace.Status{Code: 2, Message: "upstream failed"} }))},
		{"status error without message", oneScope(span(func(sd *trace.SpanData) { sd.Status = trace.Status{Code: -1} }))},
		{"status ok keeps no message", oneScope(span(func(sd *trace.SpanData) { sd.Status = trace.Status{Message: "fine"} }))},
		{"dropped counts clamped", oneScope(span(func(sd *trace.SpanData) {
			sd.DroppedAttributeCount, sd.DroppedAnnotationCount, sd.DroppedMessageEventCount, sd.DroppedLinkCount = -1, math.MaxInt64, 5, -9
		}))},
		{"invalid UTF-8 and long strings", oneScope(span(func(sd *trace.SpanData) {
			sd.Name = "bad\xffname"
			sd.Attributes = map[string]any{"k\xfe": "v\xc3", "long": long}
			sd.Status = trace.Status{Code: 13, Message: "\x80"}
			sd.Annotations = []trace.Annotation{{Time: t0, Message: long + "\xff"}}
		}))},
		{"nil spans skipped", oneScope(nil, span(nil), nil)},
		{"several scopes", traceInput{
			resource:  []metricdata.Attr{metricdata.String("service.name", "qp"), metricdata.Int("pid", 1)},
			schemaURL: "https://opentelemetry.io/schemas/1.26.0",
			scopes: []SpanScope{
				{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.60.0", SchemaURL: "https://opentelemetry.io/schemas/1.26.0",
					Spans: []*trace.SpanData{span(func(sd *trace.SpanData) { sd.SpanKind = trace.SpanKindServer }), span(func(sd *trace.SpanData) { sd.SpanKind = trace.SpanKindClient })}},
				{Name: "knative.dev/serving/pkg/queue", Spans: []*trace.SpanData{span(nil), span(func(sd *trace.SpanData) { sd.Name = "kn.queueproxy.wait" })}},
				{Name: "empty"},
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkTraceRequest(t, tc.in) })
	}
}

// TestSpanMapping checks the mapping's literal values for one span, so a
// mistake the oracle shares with the encoder still shows.
func TestSpanMapping(t *testing.T) {
	const ( // the values the OTLP proto documents
		internal, server, client = 1, 2, 3
		unset, statusErr         = 0, 2
	)
	for _, tc := range []struct {
		name        string
		sd          *trace.SpanData
		kind        int32
		flags       uint32
		parent      []byte
		traceState  string
		status      int32
		statusMsg   string
		events      []string // name and attributes of each event
		spanDropped uint32
	}{
		{"internal, sampled, local parent", span(nil), internal, 0x101, parentID[:], "", unset, "", nil, 0},
		{"server, remote parent", span(func(sd *trace.SpanData) { sd.SpanKind, sd.HasRemoteParent = trace.SpanKindServer, true }), server, 0x301, parentID[:], "", unset, "", nil, 0},
		{"client root, unsampled", span(func(sd *trace.SpanData) {
			sd.SpanKind, sd.ParentSpanID, sd.TraceOptions = trace.SpanKindClient, trace.SpanID{}, 0
		}), client, 0x100, nil, "", unset, "", nil, 0},
		{"tracestate, error", span(func(sd *trace.SpanData) {
			sd.Tracestate = mustTracestate(t, tracestate.Entry{Key: "a", Value: "1"}, tracestate.Entry{Key: "b@v", Value: "2 3"})
			sd.Status = trace.Status{Code: 14, Message: "unavailable"}
		}), internal, 0x101, parentID[:], "a=1,b@v=2 3", statusErr, "unavailable", nil, 0},
		{"events", span(func(sd *trace.SpanData) {
			sd.Annotations = []trace.Annotation{{Time: t0.Add(2), Message: "ann", Attributes: map[string]any{"z": "1", "a": true, "n": int(1)}}}
			sd.MessageEvents = []trace.MessageEvent{
				{Time: t0.Add(1), EventType: trace.MessageEventTypeSent, MessageID: 7, UncompressedByteSize: 10, CompressedByteSize: 4},
				{Time: t0.Add(3), EventType: trace.MessageEventTypeRecv},
			}
			sd.Attributes = map[string]any{"x": uint8(1)}
		}), internal, 0x101, parentID[:], "", unset, "", []string{
			"message message.type=SENT message.id=7 message.uncompressed_size=10 message.compressed_size=4",
			"ann a=true z=1 dropped=1",
			"message message.type=RECEIVED",
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := checkTraceRequest(t, oneScope(tc.sd))
			s := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
			if int32(s.Kind) != tc.kind || s.Flags != tc.flags || !bytes.Equal(s.ParentSpanId, tc.parent) || s.TraceState != tc.traceState {
				t.Errorf("kind %d flags %#x parent %x tracestate %q, want %d %#x %x %q", s.Kind, s.Flags, s.ParentSpanId, s.TraceState, tc.kind, tc.flags, tc.parent, tc.traceState)
			}
			if !bytes.Equal(s.TraceId, traceID[:]) || !bytes.Equal(s.SpanId, spanID[:]) {
				t.Errorf("ids %x/%x", s.TraceId, s.SpanId)
			}
			if s.StartTimeUnixNano != 1_700_000_000_123_456_789 || s.EndTimeUnixNano != 1_700_000_000_128_456_789 {
				t.Errorf("times %d..%d", s.StartTimeUnixNano, s.EndTimeUnixNano)
			}
			if int32(s.Status.GetCode()) != tc.status || s.Status.GetMessage() != tc.statusMsg {
				t.Errorf("status %v %q, want %d %q", s.Status.GetCode(), s.Status.GetMessage(), tc.status, tc.statusMsg)
			}
			if s.DroppedAttributesCount != tc.spanDropped {
				t.Errorf("dropped_attributes_count %d, want %d", s.DroppedAttributesCount, tc.spanDropped)
			}
			var events []string
			for _, e := range s.Events {
				events = append(events, describeEvent(e))
			}
			if strings.Join(events, "\n") != strings.Join(tc.events, "\n") {
				t.Errorf("events\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(tc.events, "\n"))
			}
		})
	}
}

func describeEvent(e *tracev1.Span_Event) string {
	parts := []string{e.Name}
	for _, kv := range e.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonv1.AnyValue_StringValue:
			parts = append(parts, kv.Key+"="+v.StringValue)
		case *commonv1.AnyValue_IntValue:
			parts = append(parts, kv.Key+"="+strconv.FormatInt(v.IntValue, 10))
		case *commonv1.AnyValue_BoolValue:
			parts = append(parts, kv.Key+"="+strconv.FormatBool(v.BoolValue))
		}
	}
	if e.DroppedAttributesCount != 0 {
		parts = append(parts, "dropped="+strconv.Itoa(int(e.DroppedAttributesCount)))
	}
	return strings.Join(parts, " ")
}

// spanRecorder is an OpenCensus exporter that keeps the spans it is given.
type spanRecorder struct{ spans []*trace.SpanData }

func (r *spanRecorder) ExportSpan(sd *trace.SpanData) { r.spans = append(r.spans, sd) }

// TestOpenCensusSpans encodes spans recorded through OpenCensus' own API,
// as the exporter will receive them.
func TestOpenCensusSpans(t *testing.T) {
	rec := &spanRecorder{}
	trace.RegisterExporter(rec)
	defer trace.UnregisterExporter(rec)

	remote := trace.SpanContext{TraceID: traceID, SpanID: parentID, TraceOptions: 1,
		Tracestate: mustTracestate(t, tracestate.Entry{Key: "vendor", Value: "v"})}
	ctx, server := trace.StartSpanWithRemoteParent(context.Background(), "GET", remote,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithSampler(trace.AlwaysSample()))
	server.AddAttributes(trace.StringAttribute("url.path", "/"), trace.Int64Attribute("http.response.status_code", 503),
		trace.BoolAttribute("b", true), trace.Float64Attribute("f", 0.5))
	_, proxy := trace.StartSpan(ctx, "kn.queueproxy.proxy")
	proxy.Annotate([]trace.Attribute{trace.StringAttribute("reason", "overload")}, "rejected")
	proxy.AddMessageSendEvent(1, 100, 50)
	proxy.AddMessageReceiveEvent(2, 10, 0)
	proxy.AddLink(trace.Link{TraceID: traceID, SpanID: spanID, Type: trace.LinkTypeChild})
	proxy.SetStatus(trace.Status{Code: 14, Message: "overload"})
	proxy.End()
	server.End()

	if len(rec.spans) != 2 {
		t.Fatalf("recorded %d spans, want 2", len(rec.spans))
	}
	req := checkTraceRequest(t, oneScope(rec.spans...))
	spans := req.ResourceSpans[0].ScopeSpans[0].Spans
	proxySpan, serverSpan := spans[0], spans[1]
	if serverSpan.Kind != tracev1.Span_SPAN_KIND_SERVER || serverSpan.Flags != 0x301 || serverSpan.TraceState != "vendor=v" ||
		!bytes.Equal(serverSpan.ParentSpanId, parentID[:]) || len(serverSpan.Attributes) != 4 {
		t.Errorf("server span: %s", prototext.Format(serverSpan))
	}
	if proxySpan.Kind != tracev1.Span_SPAN_KIND_INTERNAL || proxySpan.Flags != 0x101 || !bytes.Equal(proxySpan.ParentSpanId, serverSpan.SpanId) ||
		len(proxySpan.Events) != 3 || len(proxySpan.Links) != 1 || proxySpan.Status.Code != tracev1.Status_STATUS_CODE_ERROR {
		t.Errorf("proxy span: %s", prototext.Format(proxySpan))
	}
}

// TestAppendTraceRequestAllocs checks that a buffer with room is not
// reallocated and that encoding allocates nothing then.
func TestAppendTraceRequestAllocs(t *testing.T) {
	in := benchInput(10)
	buf := AppendTraceRequest(nil, in.resource, in.schemaURL, in.scopes)
	want := append([]byte(nil), buf...)
	allocs := testing.AllocsPerRun(20, func() {
		buf = AppendTraceRequest(buf[:0], in.resource, in.schemaURL, in.scopes)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if !bytes.Equal(buf, want) {
		t.Error("encoding the same spans twice gave different bytes")
	}
}

// benchInput is n spans of 8 attributes, one annotation and a status, in
// one scope.
func benchInput(n int) traceInput {
	spans := make([]*trace.SpanData, n)
	for i := range spans {
		spans[i] = span(func(sd *trace.SpanData) {
			sd.SpanKind = trace.SpanKindServer
			sd.SpanID[0] = byte(i)
			sd.Attributes = map[string]any{
				"http.request.method": "GET", "url.path": "/api/v1/items/" + strconv.Itoa(i), "url.scheme": "http",
				"server.address": "rev-00001.default.svc", "server.port": int64(8012),
				"network.peer.address": "10.0.0.7", "http.response.status_code": int64(200), "http.response.body.size": int64(1234),
			}
			sd.Annotations = []trace.Annotation{{Time: t0.Add(time.Millisecond), Message: "admitted"}}
		})
	}
	return traceInput{
		resource: []metricdata.Attr{metricdata.String("service.name", "qp"), metricdata.String("k8s.pod.name", "rev-00001-deployment-abc")},
		scopes:   []SpanScope{{Name: "knative.dev/serving/pkg/queue", Spans: spans}},
	}
}

func BenchmarkAppendTraceRequest(b *testing.B) {
	in := benchInput(100)
	buf := AppendTraceRequest(nil, in.resource, in.schemaURL, in.scopes)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTraceRequest(buf[:0], in.resource, in.schemaURL, in.scopes)
	}
}

// fuzzReader hands out the fuzzer's bytes as values; past the end it gives
// zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) bytes(n int) []byte {
	out := make([]byte, n)
	r.b = r.b[copy(out, r.b):]
	return out
}
func (r *fuzzReader) byte() byte   { return r.bytes(1)[0] }
func (r *fuzzReader) int64() int64 { return int64(binary.LittleEndian.Uint64(r.bytes(8))) }
func (r *fuzzReader) int() int     { return int(int32(binary.LittleEndian.Uint32(r.bytes(4)))) }
func (r *fuzzReader) string() string {
	return string(r.bytes(int(r.byte() % 24)))
}

// time is the zero time, or any instant (most in Unix-nanosecond range).
func (r *fuzzReader) time() time.Time {
	switch r.byte() % 4 {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(r.int64(), int64(r.byte()))
	}
	return time.Unix(0, r.int64())
}

func (r *fuzzReader) attrs() map[string]any {
	n := int(r.byte() % 40) // past the scratch of 32, now and then
	if n == 0 {
		return nil
	}
	m := make(map[string]any, n)
	for range n {
		k := r.string()
		switch r.byte() % 5 {
		case 0:
			m[k] = r.string()
		case 1:
			m[k] = r.byte()&1 == 1
		case 2:
			m[k] = r.int64()
		case 3:
			m[k] = math.Float64frombits(uint64(r.int64()))
		default:
			m[k] = r.int() // an int: unsupported
		}
	}
	return m
}

// fuzzSpan is a SpanData made of the fuzzer's bytes.
func fuzzSpan(r *fuzzReader) *trace.SpanData {
	sd := &trace.SpanData{Name: r.string(), SpanKind: int(r.byte() % 4), HasRemoteParent: r.byte()&1 == 1}
	copy(sd.TraceID[:], r.bytes(16))
	copy(sd.SpanID[:], r.bytes(8))
	copy(sd.ParentSpanID[:], r.bytes(int(r.byte()%2)*8))
	sd.TraceOptions = trace.TraceOptions(r.int())
	var entries []tracestate.Entry
	for range r.byte() % 4 {
		entries = append(entries, tracestate.Entry{Key: "k" + strconv.Itoa(len(entries)), Value: strconv.Itoa(r.int())})
	}
	if len(entries) > 0 {
		sd.Tracestate, _ = tracestate.New(nil, entries...)
	}
	sd.StartTime, sd.EndTime = r.time(), r.time()
	sd.Attributes = r.attrs()
	// Events as OpenCensus records them: each list in time order.
	at := time.Unix(0, r.int64()>>2)
	for range r.byte() % 5 {
		at = at.Add(time.Duration(r.byte()))
		sd.Annotations = append(sd.Annotations, trace.Annotation{Time: at, Message: r.string(), Attributes: r.attrs()})
	}
	at = time.Unix(0, r.int64()>>2)
	for range r.byte() % 5 {
		at = at.Add(time.Duration(r.byte()))
		sd.MessageEvents = append(sd.MessageEvents, trace.MessageEvent{Time: at, EventType: trace.MessageEventType(r.byte() % 4),
			MessageID: r.int64(), UncompressedByteSize: r.int64(), CompressedByteSize: r.int64()})
	}
	for range r.byte() % 3 {
		l := trace.Link{Type: trace.LinkType(r.byte() % 3), Attributes: r.attrs()}
		copy(l.TraceID[:], r.bytes(16))
		copy(l.SpanID[:], r.bytes(8))
		sd.Links = append(sd.Links, l)
	}
	sd.Status = trace.Status{Code: int32(r.int()), Message: r.string()}
	sd.DroppedAttributeCount, sd.DroppedAnnotationCount = r.int(), r.int()
	sd.DroppedMessageEventCount, sd.DroppedLinkCount = r.int(), r.int()
	return sd
}

func FuzzAppendTraceRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05hello\x02\x01" + strings.Repeat("\x7f\x13\xa5", 100)))
	f.Add(bytes.Repeat([]byte{0xff, 0x00, 0x27, 0x81}, 200))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{data}
		in := traceInput{schemaURL: r.string()}
		for range r.byte() % 3 {
			in.resource = append(in.resource, metricdata.String(r.string(), r.string()))
		}
		for range r.byte()%3 + 1 {
			s := SpanScope{Name: r.string(), Version: r.string(), SchemaURL: r.string()}
			for range r.byte() % 4 {
				s.Spans = append(s.Spans, fuzzSpan(r))
			}
			in.scopes = append(in.scopes, s)
		}
		checkTraceRequest(t, in)
	})
}
