package http

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/queue-proxy/queue-proxy/pkg/http/logtemplate"
)

var testRevision = &RequestLogRevision{
	Name: "hello-00001", Namespace: "default", Service: "hello", Configuration: "hello-config",
	PodName: "hello-00001-deployment-abc", PodIP: "10.0.0.7",
}

// lineWriter records each Write as one entry.
type lineWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *lineWriter) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

const allInputs = `{{.Request.Method}} {{.Request.RequestURI}} {{.Request.Host}} {{.Response.Code}} {{.Response.Size}} ` +
	`{{.Revision.Name}} {{.Revision.Namespace}} {{.Revision.Service}} {{.Revision.Configuration}} {{.Revision.PodName}} {{.Revision.PodIP}} [{{.TraceID}}]`

func TestRequestLogHandler(t *testing.T) {
	traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name     string
		template string
		probes   bool
		header   map[string]string
		handler  func(w http.ResponseWriter)
		want     []string // the Writes, exactly
	}{{
		name:     "every input",
		template: allInputs,
		header:   map[string]string{"traceparent": traceparent},
		handler:  func(w http.ResponseWriter) { w.WriteHeader(201); io.WriteString(w, "hello") },
		want: []string{"POST /api/items?x=1 svc.example 201 5 hello-00001 default hello hello-config hello-00001-deployment-abc 10.0.0.7 " +
			"[4bf92f3577b34da6a3ce929d0e0e4736]\n"},
	}, {
		name:     "no status written is 200; B3 trace id",
		template: "{{.Response.Code}} {{.Response.Size}} {{.TraceID}}",
		header:   map[string]string{"X-B3-TraceId": "a3ce929d0e0e4736"},
		handler:  func(w http.ResponseWriter) { io.WriteString(w, "ab") },
		want:     []string{"200 2 a3ce929d0e0e4736\n"},
	}, {
		name:     "a template ending in a newline gets no second one",
		template: "{{.Response.Code}}\n",
		handler:  func(http.ResponseWriter) {},
		want:     []string{"200\n"},
	}, {
		name:     "empty template logs nothing",
		template: "",
		handler:  func(w http.ResponseWriter) { w.WriteHeader(204) },
	}, {
		name:     "kubelet probe skipped",
		template: "x",
		header:   map[string]string{"User-Agent": "kube-probe/1.31"},
		handler:  func(http.ResponseWriter) {},
	}, {
		name:     "K-Kubelet-Probe skipped",
		template: "x",
		header:   map[string]string{"K-Kubelet-Probe": "queue"},
		handler:  func(http.ResponseWriter) {},
	}, {
		name:     "any K-Network-Probe skipped",
		template: "x",
		header:   map[string]string{"K-Network-Probe": "whatever"},
		handler:  func(http.ResponseWriter) {},
	}, {
		name:     "probes logged when enabled",
		template: "probe {{.Response.Code}}",
		probes:   true,
		header:   map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"},
		handler:  func(w http.ResponseWriter) { io.WriteString(w, "queue") },
		want:     []string{"probe 200\n"},
	}, {
		name:     "js is JSON-safe",
		template: `{"ua": "{{js .Request.UserAgent}}"}`,
		header:   map[string]string{"User-Agent": `it's "me" <x>`},
		handler:  func(http.ResponseWriter) {},
		want:     []string{`{"ua": "it\u0027s \"me\" \u003Cx\u003E"}` + "\n"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := &lineWriter{}
			called := false
			h, err := NewRequestLogHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				called = true
				tc.handler(w)
			}), out, tc.template, RequestLogTemplateInputGetterFromRevision(testRevision), tc.probes)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/api/items?x=1", strings.NewReader("body"))
			req.Host = "svc.example"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if !called {
				t.Fatal("the inner handler was not called")
			}
			if got := out.all(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("writes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRequestLogHandlerLatency(t *testing.T) {
	out := &lineWriter{}
	h, err := NewRequestLogHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), out, "{{.Response.Latency}}",
		RequestLogTemplateInputGetterFromRevision(testRevision), false)
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	lines := out.all()
	if len(lines) != 1 {
		t.Fatalf("writes %q", lines)
	}
	if l, err := strconv.ParseFloat(strings.TrimSuffix(lines[0], "\n"), 64); err != nil || l < 0 || l > 60 {
		t.Errorf("latency %q (%v): want float seconds", lines[0], err)
	}
}

func TestRequestLogHandlerTemplateErrors(t *testing.T) {
	if _, err := NewRequestLogHandler(http.NotFoundHandler(), io.Discard, "{{.Request.Method", nil, false); err == nil {
		t.Error("a template that does not parse was accepted")
	}

	// A template that fails at run time writes the fallback line only.
	out := &lineWriter{}
	h, err := NewRequestLogHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(418) }), out,
		"partial {{.Request.NoSuchField}}", RequestLogTemplateInputGetterFromRevision(testRevision), false)
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/a?b=c", nil))
	lines := out.all()
	re := regexp.MustCompile(`^Invalid request log template: method: GET, response code: 418, latency: [0-9.e-]+, url: /a\?b=c\n$`)
	if len(lines) != 1 || !re.MatchString(lines[0]) {
		t.Errorf("writes %q, want one fallback line", lines)
	}

	// A template calling a method outside logtemplate's whitelist is refused
	// at once, naming the method.
	for _, tmpl := range []string{"{{.Request.Context}}", `{{.Request.FormValue "x"}}`, "{{.Response.Code}} {{.Request.URL.JoinPath}}"} {
		if _, err := NewRequestLogHandler(http.NotFoundHandler(), io.Discard, tmpl, nil, false); !errors.Is(err, logtemplate.ErrUnsupportedMethod) {
			t.Errorf("%s: NewRequestLogHandler error %v, want one matching logtemplate.ErrUnsupportedMethod", tmpl, err)
		}
	}

	// SetTemplate: a bad template keeps the old one; "" turns logging off.
	if err := h.SetTemplate("{{"); err == nil {
		t.Error("SetTemplate accepted a bad template")
	}
	if err := h.SetTemplate("ok {{.Response.Code}}"); err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	h.SetTemplate("")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if lines := out.all(); len(lines) != 2 || lines[1] != "ok 418\n" {
		t.Errorf("writes after SetTemplate %q", lines)
	}
}

func TestRequestLogHandlerPanic(t *testing.T) {
	out := &lineWriter{}
	h, err := NewRequestLogHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "partial")
		panic("boom")
	}), out, "{{.Response.Code}} {{.Response.Size}}", RequestLogTemplateInputGetterFromRevision(testRevision), false)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic to continue", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if lines := out.all(); len(lines) != 1 || lines[0] != "500 0\n" {
		t.Errorf("writes %q, want 500 0", lines)
	}
}

// TestRequestLogHandlerConcurrent: under concurrent requests every line is
// one Write, and no line is lost or mixed with another.
func TestRequestLogHandlerConcurrent(t *testing.T) {
	out := &lineWriter{}
	h, err := NewRequestLogHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}), out, "{{.Request.URL.Path}} {{.Response.Size}}", RequestLogTemplateInputGetterFromRevision(testRevision), false)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/"+strings.Repeat("x", i), nil))
		})
	}
	wg.Wait()
	lines := out.all()
	if len(lines) != n {
		t.Fatalf("%d writes, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		path, size, ok := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
		if !ok || strings.Count(l, "\n") != 1 || strconv.Itoa(len(path)) != size {
			t.Errorf("mixed line %q", l)
		}
		seen[path] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct lines, want %d", len(seen), n)
	}
}

// TestDefaultTemplateFastPath: DefaultRequestLogTemplate, with or without
// its newline, is rendered without text/template, to the same bytes; a nil
// Revision falls back to text/template (and its error line).
func TestDefaultTemplateFastPath(t *testing.T) {
	for _, tmpl := range []string{DefaultRequestLogTemplate, DefaultRequestLogTemplate + "\n"} {
		h, err := NewRequestLogHandler(http.NotFoundHandler(), io.Discard, tmpl, nil, false)
		if err != nil || !h.template.Load().isDefault {
			t.Errorf("template %.20q...: fast path %v, err %v", tmpl, err == nil && h.template.Load().isDefault, err)
		}
	}
	if h, _ := NewRequestLogHandler(http.NotFoundHandler(), io.Discard, " "+DefaultRequestLogTemplate, nil, false); h.template.Load().isDefault {
		t.Error("another template takes the fast path")
	}
	for _, tc := range []struct {
		uri, ua, referer, remote, traceparent string
		contentLength                         int64
		resp                                  RequestLogResponse
	}{
		{"/foo?x=1", "curl/7.88.1", "", "127.0.0.1:42340", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0, RequestLogResponse{200, 294, 0.002449831}},
		{"/it's/<b>&c=d", `"q" \ 'a'`, "http://r/é", "[::1]:80", "", 12, RequestLogResponse{503, 0, 1e-7}},
		{"/\u2028\xff", "\x7f\t", "😀\U000E0001", "", "", -1, RequestLogResponse{101, 1 << 40, 123456789.5}},
		{"/", "", "", "", "", 0, RequestLogResponse{0, 0, 0}},
	} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RequestURI, req.RemoteAddr, req.ContentLength = tc.uri, tc.remote, tc.contentLength
		req.Header.Set("User-Agent", tc.ua)
		req.Header.Set("Referer", tc.referer)
		req.Header.Set("traceparent", tc.traceparent)
		checkFastPath(t, req, &tc.resp)
	}

	out := &lineWriter{}
	h, _ := NewRequestLogHandler(http.NotFoundHandler(), out, DefaultRequestLogTemplate,
		func(req *http.Request, resp *RequestLogResponse) *RequestLogTemplateInput {
			return &RequestLogTemplateInput{Request: req, Response: resp}
		}, false)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if lines := out.all(); len(lines) != 1 || !strings.HasPrefix(lines[0], "Invalid request log template: ") {
		t.Errorf("nil Revision: %q, want the fallback line", lines)
	}
}

func TestExtractTraceID(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    map[string]string
		want string
	}{
		{"none", nil, ""},
		{"traceparent", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"traceparent's second field, unvalidated length", map[string]string{"traceparent": "00-abc"}, "abc"},
		{"B3", map[string]string{"X-B3-TraceId": "a3ce929d0e0e4736"}, "a3ce929d0e0e4736"},
		{"traceparent wins", map[string]string{"traceparent": "00-aa-bb-01", "X-B3-TraceId": "cc"}, "aa"},
		{"traceparent without a second field falls back", map[string]string{"traceparent": "garbage", "X-B3-TraceId": "cc"}, "cc"},
		{"non-hex is skipped", map[string]string{"traceparent": `00-"},"x":"-01`, "X-B3-TraceId": `"injected"`}, ""},
		{"too long is skipped", map[string]string{"X-B3-TraceId": strings.Repeat("a", 33)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.h {
				h.Set(k, v)
			}
			if got := ExtractTraceID(h); got != tc.want {
				t.Errorf("ExtractTraceID = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestJSONSafeJS(t *testing.T) {
	// Where text/template's js already writes valid JSON, ours writes the
	// same.
	for _, s := range []string{"", "plain /path?a", `a\b"c`, "<script>&x=1", "tab\tnl\ncr\r\x00\x1f\x7f", "héllo wörld ☃ 😀", "\u2028\u00ad"} {
		if got, want := jsonSafeJS(s), template.JSEscapeString(s); got != want {
			t.Errorf("jsonSafeJS(%q) = %q, text/template writes %q", s, got, want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"it's", `it\u0027s`},
		{"bad\xffutf8", `bad\ufffdutf8`},
		{"\U000E0001", `\uDB40\uDC01`}, // a non-printable rune beyond U+FFFF
	} {
		got := jsonSafeJS(tc.in)
		var back string
		if got != tc.want || json.Unmarshal([]byte(`"`+got+`"`), &back) != nil {
			t.Errorf("jsonSafeJS(%q) = %q (JSON-decodes %v), want %q", tc.in, got, json.Valid([]byte(`"`+got+`"`)), tc.want)
		}
		if want := string([]rune(tc.in)); back != want {
			t.Errorf("jsonSafeJS(%q) decodes to %q, want %q", tc.in, back, want)
		}
	}
	if got := jsonSafeJSEscaper(42, "x"); got != "42x" {
		t.Errorf("js with several arguments = %q, want fmt.Sprint's", got)
	}
	s := "nothing to escape"
	if n := testing.AllocsPerRun(100, func() { jsonSafeJS(s) }); n != 0 {
		t.Errorf("jsonSafeJS allocates %v times when nothing needs escaping", n)
	}
}

func BenchmarkRequestLogHandler(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"off", ok},
		{"default-template", func() http.Handler {
			h, err := NewRequestLogHandler(ok, io.Discard, DefaultRequestLogTemplate, RequestLogTemplateInputGetterFromRevision(testRevision), false)
			if err != nil {
				b.Fatal(err)
			}
			return h
		}()},
		{"default-template-via-text/template", func() http.Handler {
			h, err := NewRequestLogHandler(ok, io.Discard, DefaultRequestLogTemplate, RequestLogTemplateInputGetterFromRevision(testRevision), false)
			if err != nil {
				b.Fatal(err)
			}
			h.template.Load().isDefault = false
			return h
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/items?x=1", nil)
			req.Header.Set("User-Agent", "bench")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}
