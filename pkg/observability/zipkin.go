package observability

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"log"
	"net"
	"strconv"
	"sync"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opencensus.io/trace"
)

// ZipkinEndpoint is the local endpoint queue-proxy reports its spans from:
// serviceName and the pod IP (IPv4 or IPv6; an unparsable ip is left out).
func ZipkinEndpoint(serviceName, ip string) *model.Endpoint {
	ep := &model.Endpoint{ServiceName: serviceName}
	if parsed := net.ParseIP(ip); parsed != nil {
		if v4 := parsed.To4(); v4 != nil {
			ep.IPv4 = v4
		} else {
			ep.IPv6 = parsed
		}
	}
	return ep
}

// ZipkinExporter is an OpenCensus trace.Exporter that converts each sampled
// span (ZipkinSpan) and hands it to a zipkin-go reporter, which batches
// spans and posts them as Zipkin v2 JSON. After Close, spans are dropped:
// zipkin-go's reporters must not be sent to once closed.
type ZipkinExporter struct {
	mu       sync.RWMutex // Close excludes ExportSpan
	closed   bool
	reporter reporter.Reporter
	local    *model.Endpoint
}

var _ trace.Exporter = (*ZipkinExporter)(nil)

// NewZipkinExporter exports to r with local as every span's local endpoint.
func NewZipkinExporter(r reporter.Reporter, local *model.Endpoint) *ZipkinExporter {
	return &ZipkinExporter{reporter: r, local: local}
}

// NewZipkinHTTPExporter exports to a Zipkin collector's v2 span endpoint
// (e.g. http://zipkin.istio-system:9411/api/v2/spans) with zipkin-go's HTTP
// reporter: a batch is posted every second, or at 100 spans, and at Close;
// at most 1000 spans wait, older ones are dropped beyond that; a post times
// out after 5 s. The reporter's errors go to errLog. The reporter's
// requests carry `b3: 0`, so a mesh does not trace them, and do not go
// through queue-proxy's traced transport.
func NewZipkinHTTPExporter(url string, local *model.Endpoint, errLog *log.Logger, opts ...zipkinhttp.ReporterOption) *ZipkinExporter {
	return NewZipkinExporter(zipkinhttp.NewReporter(url, append([]zipkinhttp.ReporterOption{zipkinhttp.Logger(errLog)}, opts...)...), local)
}

// ExportSpan implements trace.Exporter.
func (e *ZipkinExporter) ExportSpan(sd *trace.SpanData) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	e.reporter.Send(ZipkinSpan(sd, e.local))
}

// Close sends what the reporter holds and stops it. Later calls do nothing.
func (e *ZipkinExporter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.reporter.Close()
}

// ZipkinJSONExporter writes each span as one line of Zipkin v2 JSON (the
// object ZipkinExporter would post, without the array) with a single Write.
// It serves the newest generation's `stdout` tracing protocol: a debugging
// aid, not the OpenTelemetry stdout format.
type ZipkinJSONExporter struct {
	w     io.Writer
	local *model.Endpoint
}

var _ trace.Exporter = (*ZipkinJSONExporter)(nil)

// NewZipkinJSONExporter writes to w, which must be safe for concurrent use
// if anything else writes to it.
func NewZipkinJSONExporter(w io.Writer, local *model.Endpoint) *ZipkinJSONExporter {
	return &ZipkinJSONExporter{w: w, local: local}
}

// ExportSpan implements trace.Exporter.
func (e *ZipkinJSONExporter) ExportSpan(sd *trace.SpanData) {
	b, err := json.Marshal(ZipkinSpan(sd, e.local))
	if err != nil {
		return // only for spans before 1970 or with negative durations
	}
	e.w.Write(append(b, '\n')) //nolint:errcheck // nowhere to report a failed stdout write
}

// ZipkinSpan converts an OpenCensus span to Zipkin's v2 model as
// OpenCensus' Zipkin exporter (Knative 1.15's) converts it:
//
//   - trace and span ids as they are (128-bit trace id), the parent id when
//     there is one, sampled;
//   - kind SERVER or CLIENT, none for other spans;
//   - timestamp and duration from the start and end times;
//   - attributes become tags (strings as they are, integers and booleans
//     formatted, floats without an exponent); a status code other than OK
//     adds the tag "error" with the code's canonical name (UNKNOWN,
//     NOT_FOUND, ...), a status message the tag
//     "opencensus.status_description" (ochttp's "OK" included);
//   - annotations become annotations (their attributes are dropped), then
//     message events: "Received <n> bytes" / "Sent <n> bytes".
//
// Zipkin lower-cases span and service names when it marshals them.
func ZipkinSpan(sd *trace.SpanData, local *model.Endpoint) model.SpanModel {
	sampled := true
	m := model.SpanModel{
		SpanContext: model.SpanContext{
			TraceID: model.TraceID{
				High: binary.BigEndian.Uint64(sd.TraceID[0:8]),
				Low:  binary.BigEndian.Uint64(sd.TraceID[8:16]),
			},
			ID:      model.ID(binary.BigEndian.Uint64(sd.SpanID[:])),
			Sampled: &sampled,
		},
		Name:          sd.Name,
		Timestamp:     sd.StartTime,
		Duration:      sd.EndTime.Sub(sd.StartTime),
		LocalEndpoint: local,
	}
	if sd.ParentSpanID != (trace.SpanID{}) {
		parent := model.ID(binary.BigEndian.Uint64(sd.ParentSpanID[:]))
		m.ParentID = &parent
	}
	switch sd.SpanKind {
	case trace.SpanKindServer:
		m.Kind = model.Server
	case trace.SpanKindClient:
		m.Kind = model.Client
	}
	if n := len(sd.Attributes); n > 0 || sd.Code != trace.StatusCodeOK || sd.Message != "" {
		m.Tags = make(map[string]string, n+2)
		for k, v := range sd.Attributes {
			m.Tags[k] = attributeString(v)
		}
		if sd.Code != trace.StatusCodeOK {
			m.Tags["error"] = canonicalCode(sd.Code)
		}
		if sd.Message != "" {
			m.Tags["opencensus.status_description"] = sd.Message
		}
	}
	if n := len(sd.Annotations) + len(sd.MessageEvents); n > 0 {
		m.Annotations = make([]model.Annotation, 0, n)
		for _, a := range sd.Annotations {
			m.Annotations = append(m.Annotations, model.Annotation{Timestamp: a.Time, Value: a.Message})
		}
		for _, e := range sd.MessageEvents {
			v := "<?>"
			switch e.EventType {
			case trace.MessageEventTypeSent:
				v = "Sent " + strconv.FormatInt(e.UncompressedByteSize, 10) + " bytes"
			case trace.MessageEventTypeRecv:
				v = "Received " + strconv.FormatInt(e.UncompressedByteSize, 10) + " bytes"
			}
			m.Annotations = append(m.Annotations, model.Annotation{Timestamp: e.Time, Value: v})
		}
	}
	return m
}

// canonicalCodes are the names of OpenCensus' status codes (gRPC's).
var canonicalCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func canonicalCode(code int32) string {
	if code >= 0 && int(code) < len(canonicalCodes) {
		return canonicalCodes[code]
	}
	return "error code " + strconv.FormatInt(int64(code), 10)
}

func attributeString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}
