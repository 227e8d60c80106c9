package otlp

import (
	"math"
	"strings"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/internal/pbwire"
	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// decodeAs decodes b into m, checks it equals want and that b is as long
// as protobuf's encoding of want (see checkRequest).
func decodeAs(t *testing.T, b []byte, m, want proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(m, want) {
		t.Fatalf("decoded\n got: %s\nwant: %s", prototext.Format(m), prototext.Format(want))
	}
	if n := proto.Size(want); len(b) != n {
		t.Fatalf("%d bytes, protobuf's encoding is %d", len(b), n)
	}
}

func kv(key string, v *commonv1.AnyValue) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: key, Value: v}
}

func TestKeyValues(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: a two-byte length inside a KeyValue
	// Repeated KeyValue field 1 is the encoding of a Resource.
	for _, tc := range []struct {
		name string
		b    []byte
		want *commonv1.KeyValue
	}{
		{"string", AppendStringKeyValue(nil, 1, "url.path", "/healthz"), kv("url.path", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "/healthz"}})},
		{"empty string, empty key", AppendStringKeyValue(nil, 1, "", ""), kv("", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{}})},
		{"long string", AppendStringKeyValue(nil, 1, long, long), kv(long, &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: long}})},
		{"invalid UTF-8", AppendStringKeyValue(nil, 1, "k\xff", "a\xffb\xed\xa0\x80\uFFFD"), kv("k\uFFFD", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "a\uFFFDb\uFFFD\uFFFD\uFFFD\uFFFD"}})},
		{"int", AppendIntKeyValue(nil, 1, "n", -1), kv("n", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: -1}})},
		{"int zero", AppendIntKeyValue(nil, 1, "n", 0), kv("n", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{}})},
		{"int max", AppendIntKeyValue(nil, 1, "n", math.MaxInt64), kv("n", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: math.MaxInt64}})},
		{"bool true", AppendBoolKeyValue(nil, 1, "error", true), kv("error", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}})},
		{"bool false", AppendBoolKeyValue(nil, 1, "error", false), kv("error", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{}})},
		{"double", AppendDoubleKeyValue(nil, 1, "ratio", 0.75), kv("ratio", &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: 0.75}})},
		{"double NaN", AppendDoubleKeyValue(nil, 1, "ratio", math.NaN()), kv("ratio", &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: math.NaN()}})},
		{"double zero", AppendDoubleKeyValue(nil, 1, "ratio", 0), kv("ratio", &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decodeAs(t, tc.b, &resourcev1.Resource{}, &resourcev1.Resource{Attributes: []*commonv1.KeyValue{tc.want}})
		})
	}
}

func TestAppendAttrs(t *testing.T) {
	attrs := []metricdata.Attr{metricdata.String("a", "x"), metricdata.Int("b", 42), metricdata.String("c", ""), metricdata.Int("d", math.MinInt64)}
	want := &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
		kv("a", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "x"}}),
		kv("b", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 42}}),
		kv("c", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{}}),
		kv("d", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: math.MinInt64}}),
	}}
	decodeAs(t, AppendAttrs(nil, 1, attrs), &resourcev1.Resource{}, want)
	if b := AppendAttrs([]byte{1}, 1, nil); len(b) != 1 {
		t.Errorf("no attributes appended %x", b[1:])
	}
}

// TestSharedMessagesInSpans encodes a ResourceSpans' resource, scope and a
// span's attributes with the shared writers, as the trace encoder will.
func TestSharedMessagesInSpans(t *testing.T) {
	res := []metricdata.Attr{metricdata.String("service.name", "queue-proxy"), metricdata.Int("pid", 1)}
	b := AppendResource(nil, 1, res) // ResourceSpans.resource
	var scope int
	b, scope = pbwire.BeginMessage(b, 2)                 // ResourceSpans.scope_spans
	b = AppendScope(b, 1, "knative.dev/serving", "1.19") // ScopeSpans.scope
	var span int
	b, span = pbwire.BeginMessage(b, 2)               // ScopeSpans.spans
	b = AppendStringKeyValue(b, 9, "http.route", "/") // Span.attributes
	b = AppendIntKeyValue(b, 9, "http.response.status_code", 200)
	b = AppendBoolKeyValue(b, 9, "error", false)
	b = AppendDoubleKeyValue(b, 9, "ratio", 1.5)
	b = pbwire.EndMessage(b, span)
	b = pbwire.EndMessage(b, scope)

	want := &tracev1.ResourceSpans{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
			kv("service.name", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "queue-proxy"}}),
			kv("pid", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 1}}),
		}},
		ScopeSpans: []*tracev1.ScopeSpans{{
			Scope: &commonv1.InstrumentationScope{Name: "knative.dev/serving", Version: "1.19"},
			Spans: []*tracev1.Span{{Attributes: []*commonv1.KeyValue{
				kv("http.route", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "/"}}),
				kv("http.response.status_code", &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 200}}),
				kv("error", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{}}),
				kv("ratio", &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: 1.5}}),
			}}},
		}},
	}
	decodeAs(t, b, &tracev1.ResourceSpans{}, want)
}

func TestAppendScope(t *testing.T) {
	for _, tc := range []struct{ name, version string }{
		{"", ""}, {"n", ""}, {"", "v"}, {"knative.dev/serving", "1.19.0"}, {strings.Repeat("s", 300), "β"},
	} {
		// InstrumentationScope in field 1 is the encoding of a ScopeMetrics.
		decodeAs(t, AppendScope(nil, 1, tc.name, tc.version), &metricsv1.ScopeMetrics{},
			&metricsv1.ScopeMetrics{Scope: &commonv1.InstrumentationScope{Name: tc.name, Version: tc.version}})
	}
}

func TestAppendResourceEmpty(t *testing.T) {
	// The field is written, empty: the resource is present.
	decodeAs(t, AppendResource(nil, 1, nil), &metricsv1.ResourceMetrics{}, &metricsv1.ResourceMetrics{Resource: &resourcev1.Resource{}})
}
