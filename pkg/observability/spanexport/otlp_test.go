package spanexport

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/metricdata"
	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
	"go.opencensus.io/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// scopeSummary is a decoded ScopeSpans: scope name, version, schema URL
// and span names.
type scopeSummary struct {
	name, version, schemaURL string
	spans                    []string
}

// requestSummary is a decoded ExportTraceServiceRequest.
type requestSummary struct {
	resource  []string // key=value
	schemaURL string
	scopes    []scopeSummary
}

func summarize(t *testing.T, body []byte) requestSummary {
	t.Helper()
	req := &collectortrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(body, req); err != nil {
		t.Fatal("decoding the request:", err)
	}
	if n := len(req.GetResourceSpans()); n != 1 {
		t.Fatalf("%d ResourceSpans, want 1", n)
	}
	rs := req.GetResourceSpans()[0]
	var s requestSummary
	for _, kv := range rs.GetResource().GetAttributes() {
		val := "?"
		switch v := kv.GetValue().GetValue().(type) {
		case *commonv1.AnyValue_StringValue:
			val = v.StringValue
		case *commonv1.AnyValue_IntValue:
			val = strconv.FormatInt(v.IntValue, 10)
		}
		s.resource = append(s.resource, kv.GetKey()+"="+val)
	}
	s.schemaURL = rs.GetSchemaUrl()
	for _, ss := range rs.GetScopeSpans() {
		sc := scopeSummary{name: ss.GetScope().GetName(), version: ss.GetScope().GetVersion(), schemaURL: ss.GetSchemaUrl()}
		for _, sp := range ss.GetSpans() {
			sc.spans = append(sc.spans, sp.GetName())
		}
		s.scopes = append(s.scopes, sc)
	}
	return s
}

func resourceStrings(attrs []metricdata.Attr) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.Key+"="+a.Text())
	}
	return out
}

// wantScope is scope i of scopes holding the spans named.
func wantScope(scopes []Scope, i int, names ...string) scopeSummary {
	s := scopes[i]
	return scopeSummary{name: s.Name, version: s.Version, schemaURL: s.SchemaURL, spans: names}
}

// wantBody is the request AppendTraceRequest encodes for want.
func wantBody(src Source, want []scopeSummary) []byte {
	var scopes []otlp.SpanScope
	for _, s := range want {
		scopes = append(scopes, otlp.SpanScope{Name: s.name, Version: s.version, SchemaURL: s.schemaURL, Spans: testSpans(s.spans...)})
	}
	return otlp.AppendTraceRequest(nil, src.Resource, src.ResourceSchemaURL, scopes)
}

func TestOTLPGroupsByScope(t *testing.T) {
	const schema = "https://opentelemetry.io/schemas/1.34.0"
	withScopes := Source{Resource: testResource, ResourceSchemaURL: schema, Scopes: testScopes, ScopeOf: byLetter}
	tests := []struct {
		name  string
		src   Source
		spans []string
		want  []scopeSummary
	}{{
		name:  "one scope, no ScopeOf",
		src:   Source{Resource: testResource, ResourceSchemaURL: schema, Scopes: testScopes[:1]},
		spans: []string{"b1", "a1", "c1"},
		want:  []scopeSummary{wantScope(testScopes, 0, "b1", "a1", "c1")},
	}, {
		name:  "scopes in Scopes order, spans in arrival order, empty scope left out",
		src:   withScopes,
		spans: []string{"c1", "a1", "c2", "a2", "a3"},
		want:  []scopeSummary{wantScope(testScopes, 0, "a1", "a2", "a3"), wantScope(testScopes, 2, "c1", "c2")},
	}, {
		name:  "every scope",
		src:   withScopes,
		spans: []string{"b1", "c1", "a1"},
		want:  []scopeSummary{wantScope(testScopes, 0, "a1"), wantScope(testScopes, 1, "b1"), wantScope(testScopes, 2, "c1")},
	}, {
		name:  "index out of range goes to the first scope",
		src:   withScopes,
		spans: []string{"b1", "z1", "01", "a1"},
		want:  []scopeSummary{wantScope(testScopes, 0, "z1", "01", "a1"), wantScope(testScopes, 1, "b1")},
	}, {
		name:  "no scopes: one unnamed scope, no resource",
		src:   Source{ScopeOf: byLetter},
		spans: []string{"b1", "a1"},
		want:  []scopeSummary{{spans: []string{"b1", "a1"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newFakeClient(0, false)
			cfg := spanbatch.Config{MaxExportBatchSize: len(tt.spans), Clock: fakeClock()}
			e := NewOTLP(client, cfg, tt.src, nil)
			defer shutdown(t, e)
			// Each batch twice: the second is encoded in the first's buffer.
			for range 2 {
				for _, sd := range testSpans(tt.spans...) {
					e.ExportSpan(sd)
				}
				body := client.next(t)
				got := summarize(t, body)
				want := requestSummary{resource: resourceStrings(tt.src.Resource), schemaURL: tt.src.ResourceSchemaURL, scopes: tt.want}
				if !equalSummaries(got, want) {
					t.Fatalf("request:\n got %+v\nwant %+v", got, want)
				}
				if w := wantBody(tt.src, tt.want); !bytes.Equal(body, w) {
					t.Fatalf("request of %d bytes differs from AppendTraceRequest's %d", len(body), len(w))
				}
			}
			client.mu.Lock()
			first := slices.Clone(client.first)
			client.mu.Unlock()
			if len(first) != 2 || first[0] != first[1] {
				t.Error("the second batch was not encoded in the first one's buffer")
			}
		})
	}
}

func equalSummaries(a, b requestSummary) bool {
	return slices.Equal(a.resource, b.resource) && a.schemaURL == b.schemaURL &&
		slices.EqualFunc(a.scopes, b.scopes, func(x, y scopeSummary) bool {
			return x.name == y.name && x.version == y.version && x.schemaURL == y.schemaURL && slices.Equal(x.spans, y.spans)
		})
}

func TestOTLPCopiesSource(t *testing.T) {
	resource := slices.Clone(testResource)
	scopes := slices.Clone(testScopes)
	src := Source{Resource: resource, Scopes: scopes, ScopeOf: byLetter}
	client := newFakeClient(1, false)
	e := NewOTLP(client, spanbatch.Config{MaxExportBatchSize: 1, Clock: fakeClock()}, src, nil)
	defer shutdown(t, e)
	resource[0].Str, scopes[0].Name = "changed", "changed"
	e.ExportSpan(testSpan("a1"))
	got := summarize(t, client.next(t))
	if got.resource[0] != "service.name=hello" || got.scopes[0].name != "a" {
		t.Errorf("the exporter saw the caller's later changes: %+v", got)
	}
}

func TestOTLPReleasesSpans(t *testing.T) {
	client := newFakeClient(2, false)
	e := NewOTLP(client, spanbatch.Config{MaxExportBatchSize: 3, Clock: fakeClock()}, Source{Scopes: testScopes, ScopeOf: byLetter}, nil)
	for _, sd := range testSpans("a1", "b1", "a2", "c1") {
		e.ExportSpan(sd)
	}
	shutdown(t, e) // the goroutine has exited: its state may be read
	for i, g := range e.groups {
		if slices.ContainsFunc(g[:cap(g)], func(sd *trace.SpanData) bool { return sd != nil }) || len(g) != 0 {
			t.Errorf("scope %d still holds spans after export", i)
		}
	}
	if slices.ContainsFunc(e.scopes[:cap(e.scopes)], func(s otlp.SpanScope) bool { return s.Spans != nil }) || len(e.scopes) != 0 {
		t.Error("the encoded scopes still hold spans after export")
	}
}

// nopClient accepts every export without allocating.
type nopClient struct{}

func (nopClient) Export(context.Context, []byte) error { return nil }
func (nopClient) Close()                               {}

func TestOTLPExportSpanDoesNotAllocate(t *testing.T) {
	const runs = 1000
	// Queue and batch hold every span: the goroutine only collects them.
	cfg := spanbatch.Config{MaxQueueSize: 4 * runs, MaxExportBatchSize: 4 * runs, Clock: fakeClock()}
	e := NewOTLP(nopClient{}, cfg, Source{}, nil)
	defer shutdown(t, e)
	sd := testSpan("a1")
	if allocs := testing.AllocsPerRun(runs, func() { e.ExportSpan(sd) }); allocs != 0 {
		t.Errorf("ExportSpan allocates %.1f times", allocs)
	}
}

func TestOTLPExportDoesNotAllocate(t *testing.T) {
	e := NewOTLP(nopClient{}, spanbatch.Config{Clock: fakeClock()}, Source{Resource: testResource, Scopes: testScopes, ScopeOf: byLetter}, nil)
	defer shutdown(t, e)
	spans := testSpans("a1", "b1", "c1", "a2", "b2", "a3")
	ctx := context.Background()
	// No span is queued, so the processor never calls export meanwhile.
	if err := e.export(ctx, spans); err != nil { // warms the buffers up
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := e.export(ctx, spans); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a batch allocates %.1f times once the buffers are warm", allocs)
	}
}
