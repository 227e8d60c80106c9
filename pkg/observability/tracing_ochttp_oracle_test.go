package observability

// Differential ("oracle") tests of the 1.15 generation's HTTP spans: what
// ServerSpanHandler and SpanTransport make under Generation115.Spans
// (SpansOCHTTP, PropagateW3CB3) against what the real OpenCensus ochttp
// plugin makes, configured as Knative 1.15's queue-proxy configured it:
// server spans from ochttp.Handler with tracecontextb3.TraceContextEgress
// (reads traceparent, then B3) and no FormatSpanName; client spans from
// ochttp.Transport with tracecontextb3.TraceContextB3Egress (writes
// traceparent and B3). Each case runs the same input through both; ochttp
// is the expected value. OpenCensus exporters are global: these tests do
// not run in parallel.

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opencensus.io/plugin/ochttp"
	"go.opencensus.io/trace"
	"go.opencensus.io/trace/tracestate"
	"knative.dev/pkg/tracing/propagation/tracecontextb3"
)

const (
	ochttpOracleImplHeader = "X-Ochttp-Oracle-Impl"
	ochttpOracleCaseHeader = "X-Ochttp-Oracle-Case"
	ochttpOracleTheirs     = "ochttp"
	ochttpOracleOurs       = "ours"

	ochttpOracleTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ochttpOracleSpanID  = "00f067aa0ba902b7"
)

// find returns the exported spans match accepts, waiting up to wait for at
// least one.
func (e *spanRecorder) find(wait time.Duration, match func(*trace.SpanData) bool) []*trace.SpanData {
	deadline := time.Now().Add(wait)
	for {
		var found []*trace.SpanData
		e.mu.Lock()
		for _, sd := range e.spans {
			if match(sd) {
				found = append(found, sd)
			}
		}
		e.mu.Unlock()
		if len(found) > 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ochttpSpan is what is compared of a span.
type ochttpSpan struct {
	Name          string
	Kind          int
	Attrs         map[string]any
	Code          int32
	Message       string
	MessageEvents []string // "type id uncompressed compressed"
	Annotations   []string
	Links         []string
	RemoteParent  bool
	Parent        string // "root", or trace/parent-span ids (names given by the caller for local parents)
	Flags         byte
	Tracestate    string
}

func ochttpSpanOf(sd *trace.SpanData, names map[trace.SpanID]string) ochttpSpan {
	s := ochttpSpan{
		Name:         sd.Name,
		Kind:         sd.SpanKind,
		Attrs:        maps.Clone(sd.Attributes),
		Code:         sd.Status.Code,
		Message:      sd.Status.Message,
		RemoteParent: sd.HasRemoteParent,
		Parent:       "root",
		Flags:        byte(sd.TraceOptions),
		Tracestate:   tracestateString(sd.Tracestate),
	}
	if s.Attrs == nil {
		s.Attrs = map[string]any{}
	}
	for _, m := range sd.MessageEvents {
		s.MessageEvents = append(s.MessageEvents, fmt.Sprintf("type %d id %d uncompressed %d compressed %d", m.EventType, m.MessageID, m.UncompressedByteSize, m.CompressedByteSize))
	}
	for _, a := range sd.Annotations {
		s.Annotations = append(s.Annotations, fmt.Sprintf("%s %v", a.Message, a.Attributes))
	}
	for _, l := range sd.Links {
		s.Links = append(s.Links, fmt.Sprintf("%s/%s type %d %v", l.TraceID, l.SpanID, l.Type, l.Attributes))
	}
	if sd.ParentSpanID != (trace.SpanID{}) {
		if n, ok := names[sd.ParentSpanID]; ok {
			s.Parent = n
		} else {
			s.Parent = sd.TraceID.String() + "/" + sd.ParentSpanID.String()
		}
	}
	return s
}

// ochttpSpanDiff lists how ours differs from theirs.
func ochttpSpanDiff(ours, theirs ochttpSpan) []string {
	var d spanDiff
	d.add("name", ours.Name, theirs.Name)
	d.add("kind", ours.Kind, theirs.Kind)
	d.attrs(ours.Attrs, theirs.Attrs)
	d.add("status code", ours.Code, theirs.Code)
	d.add("status message", ours.Message, theirs.Message)
	d.add("message events", ours.MessageEvents, theirs.MessageEvents)
	d.add("annotations", ours.Annotations, theirs.Annotations)
	d.add("links", ours.Links, theirs.Links)
	d.add("HasRemoteParent", ours.RemoteParent, theirs.RemoteParent)
	d.add("parent", ours.Parent, theirs.Parent)
	d.add("trace options", ours.Flags, theirs.Flags)
	d.add("tracestate", ours.Tracestate, theirs.Tracestate)
	return d
}

// ochttpRespond is how the handler answers.
type ochttpRespond func(w http.ResponseWriter)

func ochttpStatusOnly(code int) ochttpRespond {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

// ochttpSteps: ints are WriteHeader calls, strings are Write calls.
func ochttpSteps(steps ...any) ochttpRespond {
	return func(w http.ResponseWriter) {
		for _, s := range steps {
			switch s := s.(type) {
			case int:
				w.WriteHeader(s)
			case string:
				_, _ = w.Write([]byte(s))
			}
		}
	}
}

type ochttpServerCase struct {
	name     string
	method   string            // default GET
	path     string            // default /api/items?x=1
	host     string            // the Host header; "" is the server's address
	header   map[string]string // "" sets the header empty (User-Agent: not sent)
	body     int               // request body bytes, sent with Content-Length
	emptyLen bool              // an empty body with Content-Length: 0
	chunked  int               // request body bytes, sent chunked (no Content-Length)
	respond  ochttpRespond     // nil: no WriteHeader, no Write
	wantCode int               // the status the client gets; default 200
	untraced bool              // neither side makes a span
}

func TestOCHTTPOracleServerSpans(t *testing.T) {
	oc := recordSpans(t)
	tp00 := "00-" + ochttpOracleTraceID + "-" + ochttpOracleSpanID
	cases := []ochttpServerCase{
		// Requests.
		{name: "GET"},
		{name: "POST with Content-Length", method: "POST", body: 11, respond: ochttpStatusOnly(201), wantCode: 201},
		{name: "POST with Content-Length 0", method: "POST", emptyLen: true},
		{name: "chunked POST without Content-Length", method: "POST", chunked: 11},
		{name: "lower-case method", method: "get"},
		{name: "lower-case post with body", method: "post", body: 3},
		{name: "query string", path: "/api/items?x=1&y=a%20b"},
		{name: "no query string", path: "/api/items"},
		{name: "escaped path", path: "/a%20b/c%2Fd?q=%20"},
		{name: "root path", path: "/"},
		{name: "custom User-Agent", header: map[string]string{"User-Agent": "curl/8.5.0"}},
		{name: "no User-Agent", header: map[string]string{"User-Agent": ""}},
		{name: "Host with port", host: "svc.example:8080"},
		{name: "Host without port", host: "svc.example"},
		{name: "IPv6 Host with port", host: "[::1]:8080"},
		// Handler outcomes.
		{name: "200", respond: ochttpStatusOnly(200)},
		{name: "201", respond: ochttpStatusOnly(201), wantCode: 201},
		{name: "302", respond: ochttpStatusOnly(302), wantCode: 302},
		{name: "400", respond: ochttpStatusOnly(400), wantCode: 400},
		{name: "401", respond: ochttpStatusOnly(401), wantCode: 401},
		{name: "403", respond: ochttpStatusOnly(403), wantCode: 403},
		{name: "404", respond: ochttpStatusOnly(404), wantCode: 404},
		{name: "409", respond: ochttpStatusOnly(409), wantCode: 409},
		{name: "418", respond: ochttpStatusOnly(418), wantCode: 418},
		{name: "422", respond: ochttpStatusOnly(422), wantCode: 422},
		{name: "429", respond: ochttpStatusOnly(429), wantCode: 429},
		{name: "499", respond: ochttpStatusOnly(499), wantCode: 499},
		{name: "500", respond: ochttpStatusOnly(500), wantCode: 500},
		{name: "501", respond: ochttpStatusOnly(501), wantCode: 501},
		{name: "503", respond: ochttpStatusOnly(503), wantCode: 503},
		{name: "504", respond: ochttpStatusOnly(504), wantCode: 504},
		{name: "no status written, no body"},
		{name: "body without WriteHeader", respond: ochttpSteps("hello")},
		{name: "201 and a body in two writes", respond: ochttpSteps(201, "hel", "lo"), wantCode: 201},
		{name: "404 and a body", respond: ochttpSteps(404, "not found"), wantCode: 404},
		{name: "WriteHeader twice, 404 then 500", respond: ochttpSteps(404, 500), wantCode: 404},
		{name: "Write then WriteHeader 500", respond: ochttpSteps("x", 500)},
		{name: "103 Early Hints then 200", respond: ochttpSteps(103, 200)},
		{name: "103 Early Hints then a body", respond: ochttpSteps(103, "x")},
		// Health endpoints.
		{name: "/healthz", path: "/healthz", untraced: true},
		{name: "/_ah/health", path: "/_ah/health", untraced: true},
		{name: "/healthz with a query", path: "/healthz?x=1", untraced: true},
		{name: "/healthz/ is traced", path: "/healthz/"},
		// Incoming trace contexts.
		{name: "incoming traceparent sampled", header: map[string]string{"Traceparent": tp00 + "-01"}},
		{name: "incoming traceparent unsampled", header: map[string]string{"Traceparent": tp00 + "-00"}},
		{name: "incoming traceparent flags 03", header: map[string]string{"Traceparent": tp00 + "-03"}},
		{name: "incoming traceparent and tracestate", header: map[string]string{"Traceparent": tp00 + "-01", "Tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}},
		{name: "incoming B3 multi sampled", header: map[string]string{"X-B3-Traceid": ochttpOracleTraceID, "X-B3-Spanid": ochttpOracleSpanID, "X-B3-Sampled": "1"}},
		{name: "incoming B3 multi 64-bit trace id", header: map[string]string{"X-B3-Traceid": ochttpOracleTraceID[16:], "X-B3-Spanid": ochttpOracleSpanID, "X-B3-Sampled": "true"}},
		{name: "incoming B3 multi with X-B3-Flags 1", header: map[string]string{"X-B3-Traceid": ochttpOracleTraceID, "X-B3-Spanid": ochttpOracleSpanID, "X-B3-Flags": "1"}},
		{name: "invalid traceparent, valid B3", header: map[string]string{"Traceparent": "00-bad", "X-B3-Traceid": ochttpOracleTraceID, "X-B3-Spanid": ochttpOracleSpanID, "X-B3-Sampled": "1"}},
		{name: "traceparent wins over B3", header: map[string]string{"Traceparent": tp00 + "-01", "X-B3-Traceid": ochttpOracleTraceID, "X-B3-Spanid": "1111111111111111", "X-B3-Sampled": "1"}},
		{name: "incoming B3 single header only", header: map[string]string{"B3": ochttpOracleTraceID + "-" + ochttpOracleSpanID + "-1"}},
	}

	var mu sync.Mutex
	seen := map[string]string{} // implementation → the span id its handler saw, "" for none
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if s := trace.FromContext(r.Context()); s != nil {
			id = s.SpanContext().SpanID.String()
		}
		mu.Lock()
		seen[r.Header.Get(ochttpOracleImplHeader)] = id
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		i, err := strconv.Atoi(r.Header.Get(ochttpOracleCaseHeader))
		if err != nil || i < 0 || i >= len(cases) {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		if c := cases[i]; c.respond != nil {
			c.respond(w)
		}
	})
	theirs := &ochttp.Handler{
		Handler:      app,
		Propagation:  tracecontextb3.TraceContextEgress,
		StartOptions: trace.StartOptions{Sampler: trace.AlwaysSample()},
	}
	ours := ServerSpanHandler(app, trace.AlwaysSample(), Generation115.Spans, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(ochttpOracleImplHeader) == ochttpOracleTheirs {
			theirs.ServeHTTP(w, r)
		} else {
			ours.ServeHTTP(w, r)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // superfluous WriteHeader calls
	srv.Start()
	t.Cleanup(srv.Close)

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spans := map[string]ochttpSpan{}
			for _, impl := range []string{ochttpOracleTheirs, ochttpOracleOurs} {
				mu.Lock()
				delete(seen, impl)
				mu.Unlock()
				ochttpServe(t, srv, c, i, impl)
				mu.Lock()
				id, called := seen[impl]
				mu.Unlock()
				if !called {
					t.Fatalf("%s: the handler was not called", impl)
				}
				if c.untraced {
					if id != "" {
						t.Errorf("%s: the handler got span %s; want none", impl, id)
					}
					continue
				}
				if id == "" {
					t.Fatalf("%s: the handler got no span", impl)
				}
				found := oc.find(5*time.Second, func(sd *trace.SpanData) bool { return sd.SpanID.String() == id })
				if len(found) != 1 {
					t.Fatalf("%s: %d spans exported with id %s", impl, len(found), id)
				}
				spans[impl] = ochttpSpanOf(found[0], nil)
			}
			if c.untraced {
				path, _, _ := strings.Cut(c.path, "?")
				if found := oc.find(100*time.Millisecond, func(sd *trace.SpanData) bool { return sd.Name == path }); len(found) > 0 {
					t.Errorf("%d spans named %s exported", len(found), path)
				}
				return
			}
			th := spans[ochttpOracleTheirs]
			t.Logf("ochttp: %+v", th)
			for _, d := range ochttpSpanDiff(spans[ochttpOracleOurs], th) {
				t.Error(d)
			}
		})
	}
}

// ochttpServe sends case i's request to srv for impl, reads the response
// to its end and checks its status.
func ochttpServe(t *testing.T, srv *httptest.Server, c ochttpServerCase, i int, impl string) {
	t.Helper()
	method, path := c.method, c.path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/api/items?x=1"
	}
	var body io.Reader
	switch {
	case c.body > 0 || c.emptyLen:
		body = strings.NewReader(strings.Repeat("b", c.body))
	case c.chunked > 0:
		body = struct{ io.Reader }{strings.NewReader(strings.Repeat("c", c.chunked))} // length unknown
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	req.Header.Set(ochttpOracleImplHeader, impl)
	req.Header.Set(ochttpOracleCaseHeader, strconv.Itoa(i))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", impl, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := c.wantCode
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d", impl, resp.StatusCode, want)
	}
}

type ochttpClientCase struct {
	name        string
	method      string // default GET
	path        string // the backend answers /status/{code} with it and "hello"
	host        string // overrides the Host header
	header      map[string]string
	body        int    // request body bytes
	parentState string // the parent span's tracestate (it has a remote parent)
	unsampled   bool   // the parent span is not sampled: neither side records a client span
	dialErr     bool   // a closed port
	truncated   bool   // the backend promises 100 bytes, sends 5 and closes
	untraced    bool   // neither side makes a span or adds headers
}

// ochttpTraceHeaders are the trace-context headers compared.
var ochttpTraceHeaders = []string{"Traceparent", "Tracestate", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled", "X-B3-Flags", "X-B3-Parentspanid", "B3"}

func TestOCHTTPOracleClientSpans(t *testing.T) {
	oc := recordSpans(t)

	var mu sync.Mutex
	got := map[string]http.Header{} // implementation → headers the backend received
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get(ochttpOracleImplHeader)] = r.Header.Clone()
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/truncated" {
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("hello"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("hello"))
	}))
	backend.Config.ErrorLog = log.New(io.Discard, "", 0)
	backend.Start()
	t.Cleanup(backend.Close)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	stale := map[string]string{
		"Traceparent": "00-11111111111111111111111111111111-2222222222222222-01", "Tracestate": "stale=1",
		"X-B3-Traceid": "11111111111111111111111111111111", "X-B3-Spanid": "2222222222222222", "X-B3-Sampled": "1",
		"X-B3-Parentspanid": "3333333333333333", "X-B3-Flags": "1", "B3": "11111111111111111111111111111111-2222222222222222-1",
	}
	cases := []ochttpClientCase{
		{name: "200", path: "/status/200"},
		{name: "404", path: "/status/404"},
		{name: "500", path: "/status/500"},
		{name: "503", path: "/status/503"},
		{name: "204", path: "/status/204"},
		{name: "HEAD", method: "HEAD", path: "/status/200"},
		{name: "POST with body", method: "POST", path: "/status/201", body: 7},
		{name: "lower-case method", method: "get", path: "/status/200"},
		{name: "query string", path: "/status/200?x=1&y=a%20b"},
		{name: "User-Agent", path: "/status/200", header: map[string]string{"User-Agent": "curl/8.5.0"}},
		{name: "Host override", path: "/status/200", host: "svc.example:8080"},
		{name: "dial error", path: "/status/200", dialErr: true},
		{name: "response body cut short", path: "/truncated", truncated: true},
		{name: "/healthz", path: "/healthz", untraced: true},
		{name: "/_ah/health", path: "/_ah/health", untraced: true},
		{name: "/healthz with stale trace headers", path: "/healthz", header: stale, untraced: true},
		{name: "parent with tracestate, request carries it", path: "/status/200", parentState: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
			header: map[string]string{"Tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}},
		{name: "parent with tracestate, request without it", path: "/status/200", parentState: "congo=t61rcWkgMzE"},
		{name: "stale trace headers on the request", path: "/status/200", header: stale},
		{name: "unsampled parent", path: "/status/200", unsampled: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srvURL := backend.URL
			if c.dialErr {
				srvURL = "http://" + closed
			}
			rts := map[string]http.RoundTripper{
				ochttpOracleTheirs: &ochttp.Transport{Base: base, Propagation: tracecontextb3.TraceContextB3Egress},
				ochttpOracleOurs:   SpanTransport(base, Generation115.Spans, nil),
			}
			spans := map[string]ochttpSpan{}
			headers := map[string]map[string][]string{}
			errs := map[string]string{}
			for _, impl := range []string{ochttpOracleTheirs, ochttpOracleOurs} {
				mu.Lock()
				delete(got, impl)
				mu.Unlock()
				ctx, parent := ochttpParent(t, c.parentState, c.unsampled)
				err := ochttpRoundTrip(t, rts[impl], ctx, c, srvURL, impl)
				if err != nil {
					errs[impl] = err.Error()
				}
				parentID := parent.SpanContext().SpanID
				isChild := func(sd *trace.SpanData) bool { return sd.ParentSpanID == parentID }
				wait := 5 * time.Second
				noSpan := c.untraced || c.unsampled
				if noSpan {
					wait = 100 * time.Millisecond
				}
				found := oc.find(wait, isChild)
				parent.End()
				var client trace.SpanContext
				switch {
				case noSpan && len(found) != 0:
					t.Errorf("%s: %d client spans; want none", impl, len(found))
				case !noSpan && len(found) != 1:
					t.Fatalf("%s: %d client spans; want 1", impl, len(found))
				case !noSpan:
					client = found[0].SpanContext
					spans[impl] = ochttpSpanOf(found[0], map[trace.SpanID]string{parentID: "parent"})
				}
				if c.dialErr {
					continue
				}
				mu.Lock()
				h, ok := got[impl]
				mu.Unlock()
				if !ok {
					t.Fatalf("%s: the backend got no request", impl)
				}
				headers[impl] = ochttpNormalizedTraceHeaders(h, client, parent.SpanContext())
			}
			if errs[ochttpOracleOurs] != errs[ochttpOracleTheirs] {
				t.Errorf("round-trip error: ours %q, theirs %q", errs[ochttpOracleOurs], errs[ochttpOracleTheirs])
			}
			if !c.untraced && !c.unsampled {
				th := spans[ochttpOracleTheirs]
				t.Logf("ochttp: %+v", th)
				for _, d := range ochttpSpanDiff(spans[ochttpOracleOurs], th) {
					t.Error(d)
				}
			}
			if c.dialErr {
				return
			}
			if th := headers[ochttpOracleTheirs]; !c.untraced && !c.unsampled && (len(th["Traceparent"]) != 1 || !strings.Contains(th["Traceparent"][0], "<client span>")) {
				t.Errorf("ochttp's traceparent %q does not name its client span", th["Traceparent"])
			}
			if o, th := headers[ochttpOracleOurs], headers[ochttpOracleTheirs]; !reflect.DeepEqual(o, th) {
				t.Errorf("trace headers the backend got:\n ours   %v\n theirs %v", o, th)
			}
		})
	}
}

// ochttpParent starts a parent span, sampled unless unsampled: a root, or,
// with a tracestate, a child of a remote parent carrying it.
func ochttpParent(t *testing.T, state string, unsampled bool) (context.Context, *trace.Span) {
	t.Helper()
	if unsampled {
		return trace.StartSpan(context.Background(), "parent", trace.WithSampler(trace.NeverSample()))
	}
	if state == "" {
		return trace.StartSpan(context.Background(), "parent", trace.WithSampler(trace.AlwaysSample()))
	}
	var entries []tracestate.Entry
	for m := range strings.SplitSeq(state, ",") {
		k, v, _ := strings.Cut(m, "=")
		entries = append(entries, tracestate.Entry{Key: k, Value: v})
	}
	ts, err := tracestate.New(nil, entries...)
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.SpanContext{TraceOptions: 1, Tracestate: ts}
	for i := range remote.TraceID {
		remote.TraceID[i] = byte(i + 1)
	}
	for i := range remote.SpanID {
		remote.SpanID[i] = byte(0x10 + i)
	}
	return trace.StartSpanWithRemoteParent(context.Background(), "parent", remote, trace.WithSampler(trace.AlwaysSample()))
}

// ochttpRoundTrip sends c's request through rt with ctx, reads the
// response body to its end (or error) and closes it; it returns the round
// trip's error or the body's.
func ochttpRoundTrip(t *testing.T, rt http.RoundTripper, ctx context.Context, c ochttpClientCase, srvURL, impl string) error {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.body > 0 {
		body = strings.NewReader(strings.Repeat("b", c.body))
	}
	req, err := http.NewRequestWithContext(ctx, method, srvURL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	req.Header.Set(ochttpOracleImplHeader, impl)
	before := req.Header.Clone()
	resp, err := rt.RoundTrip(req)
	if !reflect.DeepEqual(req.Header, before) {
		t.Errorf("%s: the caller's request headers were modified: %v", impl, req.Header)
	}
	if err != nil {
		if !c.dialErr {
			t.Fatalf("%s: %v", impl, err)
		}
		return err
	}
	if c.dialErr {
		resp.Body.Close()
		t.Fatalf("%s: the round trip to a closed port succeeded", impl)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if c.truncated != (err != nil) {
		t.Fatalf("%s: reading the body: %v", impl, err)
	}
	return err
}

// ochttpNormalizedTraceHeaders returns the trace headers in h with the
// client span's trace and span ids and the parent's span id replaced by
// names, so that the two sides' headers compare. Without a recorded client
// span (an unsampled parent), any other span id in traceparent and
// X-B3-SpanId becomes "<unrecorded span>".
func ochttpNormalizedTraceHeaders(h http.Header, client, parent trace.SpanContext) map[string][]string {
	var pairs []string
	if client.TraceID != (trace.TraceID{}) {
		pairs = append(pairs, client.TraceID.String(), "<trace>", client.SpanID.String(), "<client span>")
	}
	pairs = append(pairs, parent.TraceID.String(), "<trace>", parent.SpanID.String(), "<parent span>")
	r := strings.NewReplacer(pairs...)
	out := map[string][]string{}
	for _, k := range ochttpTraceHeaders {
		for _, v := range h[k] {
			v = r.Replace(v)
			if client.TraceID == (trace.TraceID{}) && (k == "Traceparent" || k == "X-B3-Spanid") {
				v = ochttpOtherSpanID.ReplaceAllString(v, "<unrecorded span>")
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

var ochttpOtherSpanID = regexp.MustCompile(`\b[0-9a-f]{16}\b`)

func TestOCHTTPOracleStatus(t *testing.T) {
	for code := 0; code <= 999; code++ {
		if ours, theirs := ochttpStatus(code), ochttp.TraceStatus(code, ""); ours != theirs {
			t.Errorf("HTTP %d: ours %+v, theirs %+v", code, ours, theirs)
		}
	}
}
