package otel

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// How Knative 1.15's spans reach the Collector through its Zipkin receiver
// (contrib v0.165.1, default feature gates), which these tests assert:
//
//   - The Zipkin local endpoint (SERVING_POD, SERVING_POD_IP, as
//     knative.dev/pkg's tracing.WithExporterFull builds it) becomes the
//     resource {service.name: <pod>} and, on every span, the attribute
//     network.local.address = the pod IP.
//   - Tags become string attributes, except http.status_code, which
//     arrives as http.response.status_code (gates
//     pkg.translator.zipkin.EmitV1HttpConventions and
//     DontEmitV0HttpConventions, beta, on). OpenCensus' exporter adds the
//     tag "error" = the canonical status name for a status other than OK
//     (the receiver makes the span status Error and keeps the attribute)
//     and "opencensus.status_description" = the status message (ochttp's
//     "OK", "NOT_FOUND", ...).
//   - Kinds SERVER and CLIENT are kept; OpenCensus' spans of no kind
//     (queue_proxy, queue_wait, probe) arrive as Unspecified.
//   - Annotations become events named by their message. OpenCensus'
//     exporter drops annotation attributes, so the probe span's "error"
//     annotation arrives as an event "error" with no attributes (its
//     queueproxy.probe.error attribute never reaches Zipkin); the receiver
//     only decodes event attributes from "name|{json}|dropped" values,
//     which the Collector's own Zipkin exporter writes. ochttp's message
//     event for a request body arrives as an event "Received <n> bytes", one
//     for a response write as "Sent <n> bytes".
//   - No scope (OpenCensus has none), no span flags, microsecond times.

// zipkinSlack is how far Zipkin's microsecond timestamps and durations may
// put a child outside its parent, on top of clockSlack.
const zipkinSlack = clockSlack + 3*time.Microsecond

// clientUnderWait115 says whether 1.15's client span is the child of
// queue_wait. It is not: Knative 1.15's ProxyHandler starts queue_wait
// with `_, waitSpan = trace.StartSpan(r.Context(), "queue_wait")`,
// discarding the context, so the upstream call's span is queue_proxy's
// child and queue_wait its sibling (the newest generation changed that,
// CONTRACT.md §3.3).
const clientUnderWait115 = false

// env115 turns qpEnv into what Knative 1.15's reconciler gives queue-proxy
// with Zipkin tracing (CONTRACT.md §1d): no OBSERVABILITY_CONFIG, no
// QUEUE_PROXY_TLS_*, the TRACING_CONFIG_* variables; the readiness probe
// is an HTTP GET of the app's /healthz in standard mode (one attempt per
// probe), so that a failing probe answers at once.
func env115(zipkinURL string, cc int) func(harness.Ports, map[string]string) {
	return func(p harness.Ports, env map[string]string) {
		delete(env, "OBSERVABILITY_CONFIG")
		for _, k := range []string{"MIN_VERSION", "MAX_VERSION", "CIPHER_SUITES", "CURVE_PREFERENCES"} {
			delete(env, "QUEUE_PROXY_TLS_"+k)
		}
		env["TRACING_CONFIG_BACKEND"] = "zipkin"
		env["TRACING_CONFIG_ZIPKIN_ENDPOINT"] = zipkinURL
		env["TRACING_CONFIG_DEBUG"] = "false"
		env["TRACING_CONFIG_SAMPLE_RATE"] = "1"
		env["CONTAINER_CONCURRENCY"] = strconv.Itoa(cc)
		env["SERVING_READINESS_PROBE"] = fmt.Sprintf(`{"httpGet":{"path":"/healthz","port":%d,"host":"127.0.0.1","scheme":"HTTP"},`+
			`"periodSeconds":1,"timeoutSeconds":1,"successThreshold":1,"failureThreshold":3}`, p.User)
	}
}

// ocStatus is ochttp's TraceStatus for the status codes the tests use:
// the canonical name of the OpenCensus status, and whether it is OK.
func ocStatus(code int) (string, bool) {
	switch code {
	case 404:
		return "NOT_FOUND", false
	case 503:
		return "UNAVAILABLE", false
	}
	if code < 200 || code >= 400 {
		return "UNKNOWN", false
	}
	return "OK", true
}

// zipkinLocal is every span's attribute from the local endpoint.
func zipkinLocal() map[string]any { return map[string]any{"network.local.address": "127.0.0.1"} }

// tree115 is what Knative 1.15 must trace for sc (CONTRACT.md §5.5):
// ochttp's server span (named by the path), queue_proxy, queue_wait when
// the breaker exists, and ochttp's client span.
func tree115(sc sentCall, userPort, cc int) spanTree {
	status, ok := ocStatus(sc.want)
	tags := func(url string) map[string]any {
		m := zipkinLocal()
		m["http.path"] = sc.urlPath()
		m["http.url"] = url
		m["http.host"] = sc.sentHost
		m["http.method"] = sc.method
		m["http.response.status_code"] = strconv.Itoa(sc.want)
		m["opencensus.status_description"] = status
		if sc.userAgent != "" {
			m["http.user_agent"] = sc.userAgent
		}
		if !ok {
			m["error"] = status
		}
		return m
	}
	code := ptrace.StatusCodeUnset
	if !ok {
		code = ptrace.StatusCodeError
	}
	// ochttp's message events: the request body of known length, then one
	// per response write (the reverse proxy writes a small body at once).
	var serverEvents []string
	if len(sc.body) > 0 {
		serverEvents = append(serverEvents, "Received "+strconv.Itoa(len(sc.body))+" bytes")
	}
	if len(sc.respBody) > 0 {
		serverEvents = append(serverEvents, "Sent "+strconv.Itoa(len(sc.respBody))+" bytes")
	}
	tree := spanTree{
		traceID:      sc.traceID,
		remoteParent: sc.parentSpan,
		slack:        zipkinSlack,
		spans: []spanWant{
			{role: "server", name: sc.urlPath(), kind: ptrace.SpanKindServer, attrs: tags(sc.path), status: code, events: serverEvents},
			{role: "proxy", name: "queue_proxy", kind: ptrace.SpanKindUnspecified, parent: "server", attrs: zipkinLocal()},
		},
	}
	clientParent := "proxy"
	if cc > 0 {
		tree.spans = append(tree.spans, spanWant{role: "wait", name: "queue_wait", kind: ptrace.SpanKindUnspecified,
			parent: "proxy", attrs: zipkinLocal()})
		tree.endsBefore = [][2]string{{"wait", "client"}}
		if clientUnderWait115 {
			clientParent = "wait"
		}
	}
	tree.spans = append(tree.spans, spanWant{role: "client", name: sc.urlPath(), kind: ptrace.SpanKindClient, parent: clientParent,
		attrs: tags("http://127.0.0.1:" + strconv.Itoa(userPort) + sc.path), status: code, mayOutliveParent: clientParent == "wait"})
	return tree
}

// root115 picks the root server span of sc's trace when sc brought no
// trace context: it is named by sc's path (unique among such calls).
func root115(sc sentCall) func(recSpan) bool {
	return func(s recSpan) bool { return s.Kind() == ptrace.SpanKindServer && s.Name() == sc.urlPath() }
}

// probeWindow is one health probe sent to queue-proxy and when.
type probeWindow struct {
	name       string
	from, to   time.Time
	wantEvents []string
}

// TestZipkinSpans115 checks the spans of the 1.15 generation
// (TRACING_CONFIG_BACKEND=zipkin, no OBSERVABILITY_CONFIG) as the
// Collector's Zipkin receiver decodes them, with and without a breaker:
// every call's trace in full, with W3C traceparent and B3 parents; with
// CONTAINER_CONCURRENCY 2 also probes: one root span "probe" each, no
// server span, and an "error" event when the user container is not ready;
// and nothing else.
func TestZipkinSpans115(t *testing.T) {
	get := func(name, path string, prop string, want int) spanCall {
		return spanCall{name: name, method: http.MethodGet, path: path, propagation: prop, want: want}
	}
	root := get("no trace context: a new trace, with a user agent", "/hello/new-trace", propNone, 200)
	root.userAgent = "otel-trace-test/1.0"
	post := get("POST with a body under B3 headers", "/upload", propB3, 200)
	post.method, post.body = http.MethodPost, strings.Repeat("x", 1000)
	host := get("Host without a port", "/", propW3C, 200)
	host.host = "hello.otel-ns.example.com"
	scenarios := []struct {
		name    string
		cc      int
		calls   []spanCall
		perCall int
		probes  bool
	}{
		{
			name: "cc2", cc: 2, perCall: 4, probes: true,
			calls: []spanCall{
				root,
				post,
				get("404 under a traceparent", "/status?code=404", propW3C, 404),
				get("503 under B3 headers", "/status?code=503", propB3, 503),
				get("query string", "/status?code=201&x=y", propW3C, 201),
				host,
			},
		},
		{
			name: "cc0", cc: 0, perCall: 3,
			calls: []spanCall{
				get("no trace context", "/hello/cc0", propNone, 200),
				post,
				get("503 under a traceparent", "/status?code=503", propW3C, 503),
			},
		},
	}
	for _, sn := range scenarios {
		t.Run(sn.name, func(t *testing.T) {
			t.Parallel()
			col := startZipkinCollector(t)
			s := startStackEnv(t, env115(col.url(), sn.cc))
			ready := time.Now()
			var sent []sentCall
			for _, c := range sn.calls {
				sent = append(sent, s.mustSend(t, c))
			}
			var probes []probeWindow
			if sn.probes {
				probes = sendProbes115(t, s)
			}
			spans := waitSpans(t, col.rec, "every call's and probe's spans", func(spans []recSpan) (bool, string) {
				for _, sc := range sent {
					tr, why := traceOf(spans, sc, root115(sc))
					if why != "" {
						return false, why
					}
					if len(tr) < sn.perCall {
						return false, fmt.Sprintf("%s: %d spans", sc.name, len(tr))
					}
				}
				for _, p := range probes {
					if len(startedIn(spans, p)) == 0 {
						return false, "no span of the " + p.name
					}
				}
				return true, ""
			})
			mine := map[pcommon.SpanID]bool{}
			for _, sc := range sent {
				t.Run(sc.name, func(t *testing.T) {
					tr, _ := traceOf(spans, sc, root115(sc))
					for _, s := range tr {
						mine[s.SpanID()] = true
					}
					checkTree(t, tr, tree115(sc, s.ports.User, sn.cc))
					if t.Failed() {
						t.Logf("the trace:\n%s", dumpSpans(tr))
					}
				})
			}
			for _, p := range probes {
				t.Run(p.name, func(t *testing.T) {
					in := startedIn(spans, p)
					for _, s := range in {
						mine[s.SpanID()] = true
					}
					if len(in) != 1 {
						t.Fatalf("%d spans started while the probe was answered, want 1 (probe, no server span):\n%s", len(in), dumpSpans(in))
					}
					checkTree(t, in, spanTree{spans: []spanWant{{role: "probe", name: "probe", kind: ptrace.SpanKindUnspecified,
						attrs: zipkinLocal(), events: p.wantEvents}}})
					if ev := in[0].Events(); ev.Len() == 1 && ev.At(0).Attributes().Len() != 0 {
						t.Errorf("the probe's error event has attributes {%s}; OpenCensus' Zipkin exporter drops them",
							attrKey(ev.At(0).Attributes()))
					}
					if t.Failed() {
						t.Logf("the span:\n%s", dumpSpans(in))
					}
				})
			}
			checkZipkinRest(t, spans, mine, ready)
			checkStartupTrace(t, col.rec, ptrace.SpanKindUnspecified)
		})
	}
}

// sendProbes115 sends the activator's and kubelet's probes while the user
// container is ready, then the activator's while it is not, and returns
// when each was in flight and the events its span must have.
func sendProbes115(t *testing.T, s *stack) []probeWindow {
	t.Helper()
	var out []probeWindow
	send := func(name, ua string, wantCode int, wantBody string, events []string) {
		w := probeWindow{name: name, from: time.Now().Truncate(time.Microsecond), wantEvents: events}
		code, body := s.probe(t, ua)
		w.to = time.Now()
		if code != wantCode || body != wantBody {
			t.Fatalf("%s: %d %q, want %d %q", name, code, body, wantCode, wantBody)
		}
		out = append(out, w)
	}
	send("activator probe", "Knative-Activator-Probe", 200, "queue", nil)
	send("kubelet probe", "kube-probe/1.30", 200, "queue", nil)
	req, err := http.NewRequest(http.MethodPost, s.userURL("/admin/ready?value=false"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.mustDo(req); code != http.StatusOK {
		t.Fatalf("making the app unready: %d %q", code, body)
	}
	send("failing activator probe", "Knative-Activator-Probe", 503, "", []string{"error"})
	return out
}

// startedIn returns the spans that started while p was in flight.
func startedIn(spans []recSpan, p probeWindow) []recSpan {
	var out []recSpan
	for _, s := range spans {
		if start := s.StartTimestamp().AsTime(); !start.Before(p.from) && !start.After(p.to) {
			out = append(out, s)
		}
	}
	return out
}

// checkZipkinRest checks the resource of every span, and that every span
// not in mine is a root "probe" span of the harness's readiness polling
// (started before ready).
func checkZipkinRest(t *testing.T, spans []recSpan, mine map[pcommon.SpanID]bool, ready time.Time) {
	t.Helper()
	wantRes := attrs(map[string]any{"service.name": servingPod})
	badRes := 0
	var stray []recSpan
	for _, s := range spans {
		if got := attrKey(s.resource); got != wantRes && badRes < 3 {
			badRes++
			t.Errorf("span %q resource {%s}, want {%s} (the Zipkin local endpoint's service name: SERVING_POD)", s.Name(), got, wantRes)
		}
		if mine[s.SpanID()] {
			continue
		}
		if s.Name() != "probe" || !s.ParentSpanID().IsEmpty() || !s.StartTimestamp().AsTime().Before(ready) {
			stray = append(stray, s)
		}
	}
	if len(stray) > 0 {
		t.Errorf("%d spans belong to no call, no probe and no startup probe:\n%s", len(stray), dumpSpans(stray))
	}
}
