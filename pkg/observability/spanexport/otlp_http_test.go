package spanexport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/observability/spanbatch"
	"github.com/queue-proxy/queue-proxy/pkg/otlp"
)

// TestOTLPOverHTTP runs the exporter on a real otlp.Client against a test
// OTLP/HTTP collector; goleak (TestMain) checks that Shutdown's Close
// leaves no connection behind.
func TestOTLPOverHTTP(t *testing.T) {
	type request struct {
		path, contentType string
		body              []byte
	}
	received := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error("reading the request:", err)
		}
		received <- request{r.URL.Path, r.Header.Get("Content-Type"), body}
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := otlp.NewClient(otlp.Config{
		Signal:   otlp.Traces,
		Protocol: otlp.HTTPProtobuf,
		Endpoint: u.Host,
		Path:     "/v1/traces",
		Insecure: true,
		Timeout:  guard,
		Retry:    otlp.RetryConfig{Disabled: true},
	})
	if err != nil {
		t.Fatal("NewClient:", err)
	}
	var errs errorLog
	src := Source{Resource: testResource, ResourceSchemaURL: "https://opentelemetry.io/schemas/1.34.0", Scopes: testScopes, ScopeOf: byLetter}
	e := NewOTLP(client, spanbatch.Config{Clock: fakeClock()}, src, errs.report)
	for _, sd := range testSpans("b1", "a1", "b2") {
		e.ExportSpan(sd)
	}
	shutdown(t, e)

	r := <-received
	if r.path != "/v1/traces" || r.contentType != "application/x-protobuf" {
		t.Errorf("POST %s with Content-Type %q, want /v1/traces and application/x-protobuf", r.path, r.contentType)
	}
	got := summarize(t, r.body)
	want := requestSummary{
		resource:  resourceStrings(testResource),
		schemaURL: src.ResourceSchemaURL,
		scopes:    []scopeSummary{wantScope(testScopes, 0, "a1"), wantScope(testScopes, 1, "b1", "b2")},
	}
	if !equalSummaries(got, want) {
		t.Errorf("collector received\n %+v\nwant %+v", got, want)
	}
	if got := errs.all(); len(got) != 0 {
		t.Errorf("errors reported: %v", got)
	}
}
