package sharedmain

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openzipkin/zipkin-go/model"
)

// propagationHeaders are the trace-context headers TestRunPropagation
// watches upstream, in Go's canonical form.
var propagationHeaders = []string{
	"Traceparent", "Tracestate", "Baggage",
	"X-B3-Traceid", "X-B3-Spanid", "X-B3-Sampled", "X-B3-Parentspanid", "X-B3-Flags", "B3",
}

// propagationApp is a user container that reports, for every request, the
// propagationHeaders it received (all their values), and answers "ok".
func propagationApp(t *testing.T) (*httptest.Server, chan http.Header) {
	got := make(chan http.Header, 100)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		for _, k := range propagationHeaders {
			if v, ok := r.Header[k]; ok {
				h[k] = slices.Clone(v)
			}
		}
		got <- h
		io.WriteString(w, "ok")
	}))
	t.Cleanup(app.Close)
	return app, got
}

// sentHeaders is header as an http.Header of canonical keys.
func sentHeaders(header map[string]string) http.Header {
	h := http.Header{}
	for k, v := range header {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	return h
}

// sampledTraceparent is a version-00 traceparent with the sampled flag, as
// the proxy writes it; the groups are the trace and span ids.
var sampledTraceparent = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// propagationMode is what a configuration does with trace headers.
type propagationMode int

const (
	propagateOff    propagationMode = iota // everything passes through
	propagate115                           // reads traceparent then B3; writes both
	propagateNewest                        // reads and writes W3C only
)

// exportedSpan is one exported span, from Zipkin or the stdout lines.
type exportedSpan struct {
	trace, id, parent string // parent "" for a root span
	server, client    bool
}

// TestRunPropagation checks what the user container receives of the trace
// context for each generation, with and without a breaker (CONTRACT.md
// §5.5, §5.6):
//
//   - 1.15 (TRACING_CONFIG_*): the incoming traceparent (with its
//     tracestate), else B3 multi-header, is the parent; the single b3
//     header is not read; the user container gets traceparent (+ the
//     context's tracestate, rewritten) and X-B3-* naming the client span;
//     other trace headers (b3) and baggage pass through.
//   - newest (OBSERVABILITY_CONFIG, stdout and OTLP grpc): only traceparent
//     (+ tracestate) is read and written; B3 reaches the user container as
//     the client sent it; baggage passes through.
//   - tracing off, in either generation: every header passes through
//     unchanged and none is added.
//
// At sampling rate 1 every request is sampled, even under an unsampled
// parent. Where spans are exported to something the test can read (Zipkin,
// stdout), the span named upstream is the exported client span, and the
// server span's parent is the incoming span that won.
func TestRunPropagation(t *testing.T) {
	const (
		w3cTrace, w3cSpan       = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		unsampledTrace, unsSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		b3Trace, b3Span         = "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"
		b3sTrace, b3sSpan       = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
		bothW3CTrace, bothW3C   = "11111111111111112222222222222222", "3333333333333333"
		bothB3Trace, bothB3     = "44444444444444445555555555555555", "6666666666666666"
		tsTrace, tsSpan         = "77777777777777778888888888888888", "9999999999999999"
	)
	incomingSpans := []string{w3cSpan, unsSpan, b3Span, b3sSpan, bothW3C, bothB3, tsSpan}
	incomingTraces := []string{w3cTrace, unsampledTrace, b3Trace, b3sTrace, bothW3CTrace, bothB3Trace, tsTrace}
	requests := []struct {
		name   string
		header map[string]string
		// The trace the user container gets and the incoming span that is
		// the server span's parent; "" = a new trace (root span).
		trace115, parent115       string
		traceNewest, parentNewest string
		// tracestate is the tracestate both generations write from the
		// context (OpenCensus and the SDK both rewrite it).
		tracestate string
	}{{
		name: "w3c",
		header: map[string]string{"traceparent": "00-" + w3cTrace + "-" + w3cSpan + "-01",
			"tracestate": "vendor=x", "baggage": "k=v"},
		trace115: w3cTrace, parent115: w3cSpan, traceNewest: w3cTrace, parentNewest: w3cSpan, tracestate: "vendor=x",
	}, {
		// Both generations write the tracestate they parsed, without the
		// blanks.
		name:     "w3c, tracestate with blanks",
		header:   map[string]string{"traceparent": "00-" + tsTrace + "-" + tsSpan + "-01", "tracestate": "vendor=x , other=y"},
		trace115: tsTrace, parent115: tsSpan, traceNewest: tsTrace, parentNewest: tsSpan, tracestate: "vendor=x,other=y",
	}, {
		name:     "w3c unsampled parent",
		header:   map[string]string{"traceparent": "00-" + unsampledTrace + "-" + unsSpan + "-00"},
		trace115: unsampledTrace, parent115: unsSpan, traceNewest: unsampledTrace, parentNewest: unsSpan,
	}, {
		name:     "b3",
		header:   map[string]string{"X-B3-TraceId": b3Trace, "X-B3-SpanId": b3Span, "X-B3-Sampled": "1"},
		trace115: b3Trace, parent115: b3Span,
	}, {
		// Neither generation reads the single b3 header.
		name:   "b3 single",
		header: map[string]string{"b3": b3sTrace + "-" + b3sSpan + "-1"},
	}, {
		name: "both, naming different traces",
		header: map[string]string{"traceparent": "00-" + bothW3CTrace + "-" + bothW3C + "-01",
			"tracestate": "vendor=x", "baggage": "k=v",
			"X-B3-TraceId": bothB3Trace, "X-B3-SpanId": bothB3, "X-B3-Sampled": "1"},
		trace115: bothW3CTrace, parent115: bothW3C, traceNewest: bothW3CTrace, parentNewest: bothW3C, tracestate: "vendor=x",
	}, {
		name: "none",
	}}

	generations := []struct {
		name   string
		env    map[string]string
		mode   propagationMode
		zipkin bool // 1.15 Zipkin export to a test collector
		stdout bool // spans on stdout
	}{{
		name: "1.15 zipkin",
		env:  map[string]string{"OBSERVABILITY_CONFIG": "", "TRACING_CONFIG_BACKEND": "zipkin", "TRACING_CONFIG_SAMPLE_RATE": "1"},
		mode: propagate115, zipkin: true,
	}, {
		name: "newest stdout",
		env:  map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"stdout"}}`},
		mode: propagateNewest, stdout: true,
	}, {
		name: "newest grpc",
		// Nobody listens at the endpoint: each export fails, and the 1 ms
		// export bound keeps its retries from delaying the exit.
		env: map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://127.0.0.1:9","samplingRate":1}}`,
			"OTEL_BSP_EXPORT_TIMEOUT": "1"},
		mode: propagateNewest,
	}, {
		name: "1.15 off",
		env:  map[string]string{"OBSERVABILITY_CONFIG": "", "TRACING_CONFIG_BACKEND": "none", "TRACING_CONFIG_SAMPLE_RATE": "1"},
		mode: propagateOff,
	}, {
		name: "newest off",
		env:  map[string]string{"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"none","samplingRate":1}}`},
		mode: propagateOff,
	}}

	for _, g := range generations {
		for _, cc := range []string{"0", "2"} {
			t.Run(g.name+"/cc="+cc, func(t *testing.T) {
				clearTracingEnv(t)
				out := captureStdout(t)
				env := map[string]string{"CONTAINER_CONCURRENCY": cc}
				for k, v := range g.env {
					env[k] = v
				}
				var collector *zipkinCollector
				if g.zipkin {
					collector = newZipkinCollector(t)
					env["TRACING_CONFIG_ZIPKIN_ENDPOINT"] = collector.URL + "/api/v2/spans"
				}
				app, upstream := propagationApp(t)
				q := startQP(t, app, env)

				type sent struct{ trace, span, parent string }
				var upstreamSpans []sent // of the traced requests
				for _, r := range requests {
					if resp := get(t, q.url(serverMain, "/"+strings.ReplaceAll(r.name, " ", "-")), r.header); resp.code != 200 || resp.body != "ok" {
						t.Fatalf("%s: %d %q", r.name, resp.code, resp.body)
					}
					got := <-upstream
					want := sentHeaders(r.header)
					if g.mode == propagateOff {
						if !reflect.DeepEqual(got, want) {
							t.Errorf("%s: tracing off, upstream got %v, want exactly what was sent: %v", r.name, got, want)
						}
						continue
					}
					tps := got["Traceparent"]
					var m []string
					if len(tps) == 1 {
						m = sampledTraceparent.FindStringSubmatch(tps[0])
					}
					if m == nil {
						t.Errorf("%s: upstream traceparent %q, want one sampled version-00 value", r.name, tps)
						continue
					}
					trace, span := m[1], m[2]
					wantTrace, parent := r.traceNewest, r.parentNewest
					if g.mode == propagate115 {
						wantTrace, parent = r.trace115, r.parent115
					}
					switch {
					case wantTrace != "" && trace != wantTrace:
						t.Errorf("%s: upstream trace %s, want the incoming %s", r.name, trace, wantTrace)
					case wantTrace == "" && slices.Contains(incomingTraces, trace):
						t.Errorf("%s: upstream trace %s, want a new trace", r.name, trace)
					}
					if slices.Contains(incomingSpans, span) || span == "0000000000000000" {
						t.Errorf("%s: upstream span %s, want a new one", r.name, span)
					}
					upstreamSpans = append(upstreamSpans, sent{trace, span, parent})

					// Everything else is what was sent, except what the
					// generation writes.
					want["Traceparent"] = tps
					if r.tracestate != "" {
						want["Tracestate"] = []string{r.tracestate}
					}
					if g.mode == propagate115 {
						want["X-B3-Traceid"], want["X-B3-Spanid"], want["X-B3-Sampled"] = []string{trace}, []string{span}, []string{"1"}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: upstream got %v, want %v", r.name, got, want)
					}
				}
				q.stop(t)

				var spans []exportedSpan
				switch {
				case g.zipkin:
					spans = zipkinSpans(collector.received(t))
				case g.stdout:
					spans = stdoutSpans(t, out.lines())
				default:
					if lines := out.lines(); len(lines) != 0 {
						t.Errorf("stdout %q, want nothing", lines)
					}
					return
				}
				// server, proxy and client spans, and the wait span with a breaker.
				perTrace := 3
				if cc != "0" {
					perTrace = 4
				}
				if len(spans) != perTrace*len(upstreamSpans) {
					t.Errorf("%d spans exported, want %d for %d requests: %+v", len(spans), perTrace*len(upstreamSpans), len(upstreamSpans), spans)
				}
				for _, u := range upstreamSpans {
					var ofTrace, client, server []exportedSpan
					for _, s := range spans {
						if s.trace != u.trace {
							continue
						}
						ofTrace = append(ofTrace, s)
						if s.client && s.id == u.span {
							client = append(client, s)
						}
						if s.server && s.parent == u.parent {
							server = append(server, s)
						}
					}
					if len(client) != 1 {
						t.Errorf("trace %s: no exported client span %s, the one sent upstream: %+v", u.trace, u.span, ofTrace)
					}
					if len(server) != 1 {
						t.Errorf("trace %s: want one exported server span with parent %q: %+v", u.trace, u.parent, ofTrace)
					}
				}
			})
		}
	}
}

func zipkinSpans(in []model.SpanModel) []exportedSpan {
	var out []exportedSpan
	for _, s := range in {
		e := exportedSpan{trace: traceKey(s.TraceID), id: s.ID.String(), server: s.Kind == model.Server, client: s.Kind == model.Client}
		if s.ParentID != nil {
			e.parent = s.ParentID.String()
		}
		out = append(out, e)
	}
	return out
}

// stdoutSpans decodes the OpenTelemetry stdout exporter's lines.
func stdoutSpans(t *testing.T, lines []string) []exportedSpan {
	t.Helper()
	const (
		kindServer = 2 // trace.SpanKindServer of the OpenTelemetry API
		kindClient = 3
	)
	var out []exportedSpan
	for _, l := range lines {
		var s struct {
			SpanContext struct{ TraceID, SpanID string }
			Parent      struct {
				SpanID string
				Remote bool
			}
			SpanKind int
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Errorf("stdout line %q: %v", l, err)
			continue
		}
		e := exportedSpan{trace: s.SpanContext.TraceID, id: s.SpanContext.SpanID, parent: s.Parent.SpanID,
			server: s.SpanKind == kindServer, client: s.SpanKind == kindClient}
		if e.parent == "0000000000000000" {
			e.parent = ""
		}
		if e.server && e.parent != "" && !s.Parent.Remote {
			t.Errorf("server span %+v: parent not remote", e)
		}
		out = append(out, e)
	}
	return out
}
