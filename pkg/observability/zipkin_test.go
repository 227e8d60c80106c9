package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opencensus.io/trace"
	"go.uber.org/goleak"
)

func TestZipkinSpan(t *testing.T) {
	start := time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)
	local := ZipkinEndpoint("hello-00001.default", "10.0.0.7")
	parent := model.ID(0x00f067aa0ba902b7)
	cases := []struct {
		name string
		sd   trace.SpanData
		want model.SpanModel
	}{{
		name: "server root span with attributes and an error",
		sd: trace.SpanData{
			SpanContext: trace.SpanContext{TraceID: tid, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceOptions: 1},
			SpanKind:    trace.SpanKindServer, Name: "GET /api/items", StartTime: start, EndTime: start.Add(1500 * time.Microsecond),
			Attributes: map[string]any{"http.method": "GET", "http.status_code": int64(503), "retry": true, "ratio": 0.25},
			Status:     trace.Status{Code: trace.StatusCodeUnknown, Message: "503"},
		},
		want: model.SpanModel{
			SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0x4bf92f3577b34da6, Low: 0xa3ce929d0e0e4736}, ID: 0x0102030405060708},
			Name:        "GET /api/items", Kind: model.Server, Timestamp: start, Duration: 1500 * time.Microsecond, LocalEndpoint: local,
			Tags: map[string]string{"http.method": "GET", "http.status_code": "503", "retry": "true", "ratio": "0.25", "error": "UNKNOWN", "opencensus.status_description": "503"},
		},
	}, {
		name: "client child span",
		sd: trace.SpanData{
			SpanContext:  trace.SpanContext{TraceID: tid, SpanID: trace.SpanID{7: 5}, TraceOptions: 1},
			ParentSpanID: sid, SpanKind: trace.SpanKindClient, Name: "GET /", StartTime: start, EndTime: start.Add(time.Millisecond),
		},
		want: model.SpanModel{
			SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0x4bf92f3577b34da6, Low: 0xa3ce929d0e0e4736}, ID: 5, ParentID: &parent},
			Name:        "GET /", Kind: model.Client, Timestamp: start, Duration: time.Millisecond, LocalEndpoint: local,
		},
	}, {
		name: "internal span with an annotation and a status without message",
		sd: trace.SpanData{
			SpanContext: trace.SpanContext{TraceID: tid, SpanID: sid}, ParentSpanID: trace.SpanID{0, 0, 0, 0, 0, 0, 0, 9},
			Name: "queue_wait", StartTime: start, EndTime: start,
			Annotations: []trace.Annotation{{Time: start, Message: "admitted"}},
			Status:      trace.Status{Code: trace.StatusCodeUnavailable},
		},
		want: model.SpanModel{
			SpanContext: model.SpanContext{TraceID: model.TraceID{High: 0x4bf92f3577b34da6, Low: 0xa3ce929d0e0e4736}, ID: model.ID(0x00f067aa0ba902b7), ParentID: func() *model.ID { id := model.ID(9); return &id }()},
			Name:        "queue_wait", Timestamp: start, LocalEndpoint: local,
			Annotations: []model.Annotation{{Timestamp: start, Value: "admitted"}},
			Tags:        map[string]string{"error": "UNAVAILABLE"},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ZipkinSpan(&tc.sd, local)
			gotJSON, err1 := json.Marshal(got)
			wantJSON, err2 := json.Marshal(tc.want)
			if err1 != nil || err2 != nil || !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("ZipkinSpan =\n%s (%v)\nwant\n%s (%v)", gotJSON, err1, wantJSON, err2)
			}
		})
	}
}

func TestZipkinEndpoint(t *testing.T) {
	for ip, want := range map[string]string{
		"10.0.0.7": `{"serviceName":"rev.ns","ipv4":"10.0.0.7"}`,
		"fd00::7":  `{"serviceName":"rev.ns","ipv6":"fd00::7"}`,
		"":         `{"serviceName":"rev.ns"}`,
		"pod-ip":   `{"serviceName":"rev.ns"}`,
	} {
		b, err := json.Marshal(ZipkinEndpoint("rev.ns", ip))
		if err != nil || string(b) != want {
			t.Errorf("ZipkinEndpoint(%q) = %s %v, want %s", ip, b, err, want)
		}
	}
}

// zipkinReceiver is an httptest Zipkin collector: every POST body is
// decoded as a Zipkin v2 span list and sent on spans.
type zipkinReceiver struct {
	*httptest.Server
	posts chan zipkinPost
}

type zipkinPost struct {
	header http.Header
	spans  []model.SpanModel
	err    error
}

func newZipkinReceiver(t *testing.T) *zipkinReceiver {
	r := &zipkinReceiver{posts: make(chan zipkinPost, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p zipkinPost
		p.header = req.Header.Clone()
		if req.Method != http.MethodPost || req.URL.Path != "/api/v2/spans" {
			p.err = &json.UnsupportedValueError{Str: req.Method + " " + req.URL.Path}
		} else {
			p.err = json.NewDecoder(req.Body).Decode(&p.spans)
		}
		r.posts <- p
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *zipkinReceiver) url() string { return r.URL + "/api/v2/spans" }

// drain returns every span posted so far (call it after the exporter's
// Close, which posts synchronously).
func (r *zipkinReceiver) drain(t *testing.T) []model.SpanModel {
	t.Helper()
	var spans []model.SpanModel
	for {
		select {
		case p := <-r.posts:
			if p.err != nil {
				t.Fatalf("bad post: %v", p.err)
			}
			if ct, b3 := p.header.Get("Content-Type"), p.header.Get("b3"); ct != "application/json" || b3 != "0" {
				t.Errorf("post headers Content-Type %q b3 %q, want application/json and 0", ct, b3)
			}
			spans = append(spans, p.spans...)
		default:
			return spans
		}
	}
}

func TestZipkinHTTPExporter(t *testing.T) {
	// Runs last: after the receiver and the client's connections are closed.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	recv := newZipkinReceiver(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	exp := NewZipkinHTTPExporter(recv.url(), ZipkinEndpoint("hello-00001.default", "10.0.0.7"), log.New(io.Discard, "", 0),
		zipkinhttp.Client(&http.Client{Transport: tr}))
	trace.RegisterExporter(exp)
	defer trace.UnregisterExporter(exp)

	remote := trace.SpanContext{TraceID: tid, SpanID: sid, TraceOptions: 1}
	ctx, server := trace.StartSpanWithRemoteParent(context.Background(), "GET /api/items", remote,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithSampler(trace.AlwaysSample()))
	_, child := trace.StartSpan(ctx, "queue_proxy")
	child.End()
	server.End()
	_, unsampled := trace.StartSpan(context.Background(), "never", trace.WithSampler(trace.NeverSample()))
	unsampled.End()

	if err := exp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	spans := recv.drain(t)
	if len(spans) != 2 {
		t.Fatalf("received %d spans, want 2: %+v", len(spans), spans)
	}
	byName := map[string]model.SpanModel{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	srv, qp := byName["get /api/items"], byName["queue_proxy"]
	wantTrace := model.TraceID{High: 0x4bf92f3577b34da6, Low: 0xa3ce929d0e0e4736}
	if srv.TraceID != wantTrace || srv.ParentID == nil || *srv.ParentID != model.ID(0x00f067aa0ba902b7) || srv.Kind != model.Server {
		t.Errorf("server span %+v: want trace %v, parent 00f067aa0ba902b7, kind SERVER", srv, wantTrace)
	}
	if qp.TraceID != wantTrace || qp.ParentID == nil || *qp.ParentID != srv.ID || qp.Kind != "" {
		t.Errorf("queue_proxy span %+v: want a child of %v", qp, srv.ID)
	}
	for _, s := range spans {
		if s.LocalEndpoint == nil || s.LocalEndpoint.ServiceName != "hello-00001.default" || !s.LocalEndpoint.IPv4.Equal(net.ParseIP("10.0.0.7")) {
			t.Errorf("local endpoint %+v", s.LocalEndpoint)
		}
	}

	// After Close, spans are dropped instead of blocking on the stopped
	// reporter.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, s := trace.StartSpan(context.Background(), "late", trace.WithSampler(trace.AlwaysSample()))
		s.End()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("exporting after Close blocked")
	}
	if err := exp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// countingReporter counts spans and panics on a Send after Close.
type countingReporter struct {
	sent   int
	closed bool
}

func (r *countingReporter) Send(model.SpanModel) {
	if r.closed {
		panic("Send after Close")
	}
	r.sent++
}
func (r *countingReporter) Close() error { r.closed = true; return nil }

var _ reporter.Reporter = (*countingReporter)(nil)

func TestZipkinExporterDropsAfterClose(t *testing.T) {
	r := &countingReporter{}
	exp := NewZipkinExporter(r, nil)
	sd := &trace.SpanData{SpanContext: trace.SpanContext{TraceID: tid, SpanID: sid}, StartTime: time.Now(), EndTime: time.Now()}
	exp.ExportSpan(sd)
	exp.Close()
	exp.ExportSpan(sd)
	if r.sent != 1 || !r.closed {
		t.Errorf("sent %d closed %v, want 1 true", r.sent, r.closed)
	}
}

func TestZipkinJSONExporter(t *testing.T) {
	var buf bytes.Buffer
	exp := NewZipkinJSONExporter(&buf, ZipkinEndpoint("rev.ns", "10.0.0.7"))
	trace.RegisterExporter(exp)
	defer trace.UnregisterExporter(exp)
	ctx, server := trace.StartSpan(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithSampler(trace.AlwaysSample()))
	_, child := trace.StartSpan(ctx, "queue_proxy")
	child.End()
	server.End()

	lines := strings.SplitAfter(buf.String(), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("output %q: want two lines", buf.String())
	}
	for i, want := range []string{"queue_proxy", "get /"} {
		var s model.SpanModel
		if err := json.Unmarshal([]byte(lines[i]), &s); err != nil || s.Name != want || s.LocalEndpoint.ServiceName != "rev.ns" {
			t.Errorf("line %d %q: %v, name %q", i, lines[i], err, s.Name)
		}
	}
}
