package logtemplate

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"text/template"
)

// benchInput has the shape of the request log's template input.
type benchInput struct {
	Request  *http.Request
	Response *struct {
		Code, Size int
		Latency    float64
	}
	Revision *struct{ Name, Namespace, Service, Configuration, PodName, PodIP string }
	TraceID  string
}

func newBenchInput(b testing.TB) *benchInput {
	req, err := http.NewRequest("GET", "http://svc.example/api/items?id=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.RequestURI = "/api/items?id=1"
	req.RemoteAddr = "10.1.2.3:4567"
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) \"bench\"")
	req.Header.Set("Referer", "https://ref.example/")
	req.Header.Set("X-B3-Traceid", "80f198ee56343ba864fe8b2a57d3eff7")
	in := &benchInput{Request: req, TraceID: "80f198ee56343ba864fe8b2a57d3eff7"}
	in.Response = &struct {
		Code, Size int
		Latency    float64
	}{200, 1234, 0.001234}
	in.Revision = &struct{ Name, Namespace, Service, Configuration, PodName, PodIP string }{
		"hello-00001", "default", "hello", "hello-config", "hello-00001-pod", "10.0.0.7"}
	return in
}

// benchJS stands in for the request log's js: text/template's argument
// handling and JavaScript escaping.
func benchJS(args ...any) string {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			return escapeJS(s)
		}
	}
	return escapeJS(fmt.Sprint(args...))
}

// BenchmarkKnativeTemplate renders Knative 1.15's request log template with
// text/template and with this package.
func BenchmarkKnativeTemplate(b *testing.B) {
	funcs := map[string]any{"js": benchJS}
	std, err := template.New("requestLog").Funcs(funcs).Parse(knativeTemplate)
	if err != nil {
		b.Fatal(err)
	}
	ours, err := Parse("requestLog", knativeTemplate, funcs)
	if err != nil {
		b.Fatal(err)
	}
	in := newBenchInput(b)
	var want, got bytes.Buffer
	if err := std.Execute(&want, in); err != nil {
		b.Fatal(err)
	}
	if err := ours.Execute(&got, in); err != nil || got.String() != want.String() {
		b.Fatalf("got %q, %v; want %q", got.String(), err, want.String())
	}
	engines := []struct {
		name string
		exec func(*bytes.Buffer) error
	}{
		{"text/template", func(buf *bytes.Buffer) error { return std.Execute(buf, in) }},
		{"logtemplate", func(buf *bytes.Buffer) error { return ours.Execute(buf, in) }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := e.exec(&buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
