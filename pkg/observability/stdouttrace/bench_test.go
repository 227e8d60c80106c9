package stdouttrace

import (
	"context"
	"io"
	"testing"

	octrace "go.opencensus.io/trace"
	otelstdout "go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
)

// benchResource is a resource the size of the newest generation's.
var benchResource = []metricdata.Attr{
	metricdata.String("container.name", "queue-proxy"),
	metricdata.String("k8s.namespace.name", "default"),
	metricdata.String("k8s.pod.name", "hello-00001-deployment-5d8f9c7b6-x2x9z"),
	metricdata.String("kn.configuration.name", "hello"),
	metricdata.String("kn.revision.name", "hello-00001"),
	metricdata.String("kn.service.name", "hello"),
	metricdata.String("service.instance.id", "hello-00001-deployment-5d8f9c7b6-x2x9z"),
	metricdata.String("service.name", "hello"),
	metricdata.String("service.version", "unknown"),
	metricdata.String("telemetry.sdk.language", "go"),
	metricdata.String("telemetry.sdk.name", "opentelemetry"),
	metricdata.String("telemetry.sdk.version", "1.47.0"),
}

// benchAttrs are a server span's semantic-convention attributes.
var benchAttrs = map[string]any{
	"http.request.method":       "GET",
	"url.path":                  "/api/v1/items",
	"url.scheme":                "http",
	"server.address":            "hello.default.svc.cluster.local",
	"server.port":               int64(8012),
	"network.peer.address":      "10.0.0.12",
	"network.peer.port":         int64(41234),
	"client.address":            "203.0.113.7",
	"user_agent.original":       "curl/8.5.0",
	"network.protocol.version":  "1.1",
	"http.response.status_code": int64(200),
	"http.response.body.size":   int64(1024),
	"kn.route.tag":              "DEFAULT",
}

func benchSpan() *octrace.SpanData {
	s := baseOC()
	s.ParentSpanID = parentSpanID
	s.HasRemoteParent = true
	s.Attributes = benchAttrs
	return s
}

// BenchmarkAppendSpan measures a server span's line.
func BenchmarkAppendSpan(b *testing.B) {
	s := benchSpan()
	scope := Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.63.0"}
	buf := AppendSpan(nil, s, benchResource, scope)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSpan(buf[:0], s, benchResource, scope)
	}
}

// BenchmarkSDKExporter measures the SDK's exporter on the same span, for
// comparison.
func BenchmarkSDKExporter(b *testing.B) {
	exporter, err := otelstdout.New(otelstdout.WithWriter(io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	attrs := otelAttrsFromMap(benchAttrs)
	stub := tracetest.SpanStub{
		Name:        baseName,
		SpanContext: oteltrace.NewSpanContext(oteltrace.SpanContextConfig{TraceID: baseTraceID, SpanID: baseSpanID, TraceFlags: 1}),
		Parent: oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID: baseTraceID, SpanID: parentSpanID, TraceFlags: 1, Remote: true,
		}),
		SpanKind:             oteltrace.SpanKindServer,
		StartTime:            baseStart,
		EndTime:              baseEnd,
		Attributes:           attrs,
		Resource:             sdkresource.NewSchemaless(otelAttrs(benchResource)...),
		InstrumentationScope: instrumentation.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.63.0"},
	}
	spans := []sdktrace.ReadOnlySpan{stub.Snapshot()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := exporter.ExportSpans(ctx, spans); err != nil {
			b.Fatal(err)
		}
	}
}
