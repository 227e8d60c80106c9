package otel

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// spanTimeout bounds the wait for spans: OTLP batches are sent every
// 100 ms here (OTEL_BSP_SCHEDULE_DELAY), Zipkin's every second; the rest is
// slack for a loaded 2-core machine.
const spanTimeout = 30 * time.Second

// traceExport is one ConsumeTraces call of a receiver: one export request
// (OTLP) or one POST of spans (Zipkin) that the Collector decoded.
type traceExport struct {
	td ptrace.Traces
	at time.Time
}

// spanRecorder is a receiver's consumer: it keeps every export.
type spanRecorder struct {
	mu      sync.Mutex
	exports []traceExport
}

func (r *spanRecorder) consume(_ context.Context, td ptrace.Traces) error {
	e := traceExport{td: ptrace.NewTraces(), at: time.Now()}
	td.CopyTo(e.td)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exports = append(r.exports, e)
	return nil
}

// all returns every export so far.
func (r *spanRecorder) all() []traceExport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exports)
}

// recSpan is one received span with the resource and scope it came in.
type recSpan struct {
	ptrace.Span
	resource          pcommon.Map
	resourceSchemaURL string
	scope             pcommon.InstrumentationScope
	scopeSchemaURL    string
}

// spans flattens every export so far, in arrival order, leaving out the
// startup traces (startupSpans): one per process start, they are checked
// on their own.
func (r *spanRecorder) spans() []recSpan {
	_, rest := splitStartup(r.allSpans())
	return rest
}

// startupSpans returns the spans of the startup traces received so far.
func (r *spanRecorder) startupSpans() []recSpan {
	startup, _ := splitStartup(r.allSpans())
	return startup
}

// allSpans flattens every export so far, in arrival order.
func (r *spanRecorder) allSpans() []recSpan {
	var out []recSpan
	for _, e := range r.all() {
		out = append(out, flattenSpans(e.td)...)
	}
	return out
}

// startupRootName is the root span of queue-proxy's startup trace.
const startupRootName = "queue-proxy startup"

// splitStartup separates the spans of traces with a startupRootName span
// (startup) from the others (rest).
func splitStartup(spans []recSpan) (startup, rest []recSpan) {
	traces := map[pcommon.TraceID]bool{}
	for _, s := range spans {
		if s.Name() == startupRootName {
			traces[s.TraceID()] = true
		}
	}
	for _, s := range spans {
		if traces[s.TraceID()] {
			startup = append(startup, s)
		} else {
			rest = append(rest, s)
		}
	}
	return startup, rest
}

// checkStartupTrace waits for a startup trace (the process answered a
// probe 200, so it exports one) and checks each received: a root span
// named startupRootName without a parent, of kind kind, and children of
// it only, named after the phases, one after the other in time, one of
// them ending with the root; every phase up to the first probe answered
// 200 is there.
func checkStartupTrace(t *testing.T, rec *spanRecorder, kind ptrace.SpanKind) {
	t.Helper()
	var spans []recSpan
	if err := poll(spanTimeout, func() (bool, string) {
		spans = rec.startupSpans()
		return len(spans) > 0, "no startup trace yet"
	}); err != nil {
		t.Fatal(err)
	}
	for id, tr := range byTrace(spans) {
		var root *recSpan
		var children []recSpan
		for i := range tr {
			if tr[i].Name() == startupRootName {
				root = &tr[i]
			} else {
				children = append(children, tr[i])
			}
		}
		if !root.ParentSpanID().IsEmpty() || root.Kind() != kind {
			t.Errorf("trace %v: root span parent %v, kind %v; want none, %v", id, root.ParentSpanID(), root.Kind(), kind)
		}
		slices.SortFunc(children, func(a, b recSpan) int { return a.StartTimestamp().AsTime().Compare(b.StartTimestamp().AsTime()) })
		names := map[string]bool{}
		prevEnd := root.StartTimestamp().AsTime()
		rootEndsAPhase := false
		for _, c := range children {
			names[c.Name()] = true
			if c.EndTimestamp().AsTime().Sub(root.EndTimestamp().AsTime()).Abs() <= 2*time.Microsecond {
				rootEndsAPhase = true
			}
			if c.ParentSpanID() != root.SpanID() || c.Kind() != kind {
				t.Errorf("trace %v: span %q parent %v kind %v, want the root %v and %v", id, c.Name(), c.ParentSpanID(), c.Kind(), root.SpanID(), kind)
			}
			if d := c.StartTimestamp().AsTime().Sub(prevEnd).Abs(); d > 2*time.Microsecond {
				t.Errorf("trace %v: span %q starts %v from the previous phase's end", id, c.Name(), d)
			}
			prevEnd = c.EndTimestamp().AsTime()
		}
		// The root ends with the phase that made the process ready; a
		// first request after that comes as a later child.
		if !rootEndsAPhase {
			t.Errorf("trace %v: the root ends with no phase:\n%s", id, dumpSpans(tr))
		}
		for _, want := range []string{"parse environment", "open listeners", "wait for the first probe", "wait for the user container", "answer the first probe"} {
			if !names[want] {
				t.Errorf("trace %v: no %q span:\n%s", id, want, dumpSpans(tr))
			}
		}
	}
}

func flattenSpans(td ptrace.Traces) []recSpan {
	var out []recSpan
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				out = append(out, recSpan{
					Span:              ss.Spans().At(k),
					resource:          rs.Resource().Attributes(),
					resourceSchemaURL: rs.SchemaUrl(),
					scope:             ss.Scope(),
					scopeSchemaURL:    ss.SchemaUrl(),
				})
			}
		}
	}
	return out
}

// traceCollector is the Collector's OTLP receiver for traces, both
// protocols on free loopback ports.
type traceCollector struct {
	grpcAddr, httpAddr string
	rec                *spanRecorder
}

func startTraceCollector(t *testing.T) *traceCollector {
	t.Helper()
	rec := &spanRecorder{}
	next, err := consumer.NewTraces(rec.consume)
	if err != nil {
		t.Fatal(err)
	}
	factory := otlpreceiver.NewFactory()
	var c *traceCollector
	startReceiver(t, "the OTLP trace receiver", func() (component.Component, error) {
		c = &traceCollector{
			grpcAddr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
			httpAddr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
			rec:      rec,
		}
		cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
		cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = c.grpcAddr
		cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = c.httpAddr
		return factory.CreateTraces(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, next)
	})
	return c
}

// endpoint is the tracing.endpoint for protocol, as the metrics tests
// write requestMetrics.endpoint: plain-text http URLs.
func (c *traceCollector) endpoint(protocol string) string {
	if protocol == protoGRPC {
		return "http://" + c.grpcAddr
	}
	return "http://" + c.httpAddr + "/v1/traces"
}

// zipkinCollector is the Collector contrib's Zipkin receiver on a free
// loopback port.
type zipkinCollector struct {
	addr string
	rec  *spanRecorder
}

func startZipkinCollector(t *testing.T) *zipkinCollector {
	t.Helper()
	rec := &spanRecorder{}
	next, err := consumer.NewTraces(rec.consume)
	if err != nil {
		t.Fatal(err)
	}
	factory := zipkinreceiver.NewFactory()
	var c *zipkinCollector
	startReceiver(t, "the Zipkin receiver", func() (component.Component, error) {
		c = &zipkinCollector{addr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), rec: rec}
		cfg := factory.CreateDefaultConfig().(*zipkinreceiver.Config)
		cfg.ServerConfig.NetAddr.Endpoint = c.addr
		return factory.CreateTraces(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, next)
	})
	return c
}

// url is the Zipkin v2 spans URL (TRACING_CONFIG_ZIPKIN_ENDPOINT).
func (c *zipkinCollector) url() string { return "http://" + c.addr + "/api/v2/spans" }

// startReceiver creates and starts a receiver, again (three attempts in
// all) while another program took its port first, and shuts it down when
// the test ends.
func startReceiver(t *testing.T, what string, create func() (component.Component, error)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r, err := create()
		if err != nil {
			t.Fatalf("creating %s: %v", what, err)
		}
		err = r.Start(context.Background(), componenttest.NewNopHost())
		if err == nil {
			t.Cleanup(func() {
				if err := r.Shutdown(context.Background()); err != nil {
					t.Errorf("stopping %s: %v", what, err)
				}
			})
			return
		}
		r.Shutdown(context.Background()) //nolint:errcheck // it did not start
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("starting %s: %v", what, err)
		}
	}
}

// waitSpans polls the recorder until cond holds for every span received so
// far, and returns them.
func waitSpans(t *testing.T, rec *spanRecorder, what string, cond func([]recSpan) (bool, string)) []recSpan {
	t.Helper()
	var got []recSpan
	err := poll(spanTimeout, func() (bool, string) {
		got = rec.spans()
		return cond(got)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v\nreceived:\n%s", what, err, dumpSpans(got))
	}
	return got
}

// byTrace groups spans by trace id.
func byTrace(spans []recSpan) map[pcommon.TraceID][]recSpan {
	m := map[pcommon.TraceID][]recSpan{}
	for _, s := range spans {
		m[s.TraceID()] = append(m[s.TraceID()], s)
	}
	return m
}

// dumpSpans renders spans for failure messages, one line each, ordered by
// trace and start time.
func dumpSpans(spans []recSpan) string {
	spans = slices.Clone(spans)
	sort.SliceStable(spans, func(i, j int) bool {
		if a, b := spans[i].TraceID().String(), spans[j].TraceID().String(); a != b {
			return a < b
		}
		return spans[i].StartTimestamp() < spans[j].StartTimestamp()
	})
	var b strings.Builder
	for _, s := range spans {
		b.WriteString(dumpSpan(s))
		b.WriteByte('\n')
	}
	return b.String()
}

func dumpSpan(s recSpan) string {
	var events []string
	for i := 0; i < s.Events().Len(); i++ {
		e := s.Events().At(i)
		events = append(events, strconv.Quote(e.Name())+"{"+attrKey(e.Attributes())+"}")
	}
	return fmt.Sprintf("  trace %s span %s parent %s flags %#x %s %q scope %q/%q(schema %q) status %s %q start %s dur %v\n"+
		"    attrs {%s}\n    events %v links %d tracestate %q resource {%s} (schema %q)",
		s.TraceID(), s.SpanID(), s.ParentSpanID(), s.Flags(), s.Kind(), s.Name(),
		s.scope.Name(), s.scope.Version(), s.scopeSchemaURL, s.Status().Code(), s.Status().Message(),
		s.StartTimestamp().AsTime().Format(time.RFC3339Nano), s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()),
		attrKey(s.Attributes()), events, s.Links().Len(), s.TraceState().AsRaw(), attrKey(s.resource), s.resourceSchemaURL)
}

// spanWant is what one span of a request's trace must be.
type spanWant struct {
	role                string // how messages name it: server, proxy, wait, client, probe
	name                string
	kind                ptrace.SpanKind
	parent              string // role of the parent; "" for the trace's first span, whose parent is the tree's remote parent
	scope, scopeVersion string
	attrs               map[string]any // exactly these
	status              ptrace.StatusCode
	events              []string // names, in order
	flags               uint32
	// mayOutliveParent: the parent may end first (a span under
	// kn.queueproxy.wait, which ends at admission).
	mayOutliveParent bool
}

// spanTree is what the spans of one request's trace must be.
type spanTree struct {
	traceID      pcommon.TraceID // zero: any (a new trace)
	remoteParent pcommon.SpanID  // parent of the first span; zero: it is a root
	spans        []spanWant
	// endsBefore lists role pairs {a, b}: a ends before b starts.
	endsBefore [][2]string
	// slack is how far timestamps may be off when nesting is checked
	// (Zipkin carries microseconds).
	slack time.Duration
}

// clockSlack is how far a child span may seem to end after its parent.
// OpenCensus, like the OpenTelemetry SDK, stamps a span's start with the
// wall clock and computes its end as start plus the monotonic time elapsed;
// when the wall clock is slewed between the parent's start and the child's
// (NTP), the child's end moves by the adjustment relative to the parent's.
// Seen: 3.4 µs on a CI machine.
const clockSlack = 50 * time.Microsecond

// checkTree checks a trace's spans against want: the span count, then
// each span (found by name and kind), its parent, the nesting in time,
// and the order of endsBefore. It returns the spans by role.
func checkTree(t *testing.T, got []recSpan, want spanTree) map[string]recSpan {
	t.Helper()
	if len(got) != len(want.spans) {
		t.Errorf("%d spans in the trace, want %d (%s)", len(got), len(want.spans), roles(want.spans))
	}
	byRole := map[string]recSpan{}
	ids := map[pcommon.SpanID]bool{}
	for _, s := range got {
		if s.SpanID().IsEmpty() || ids[s.SpanID()] {
			t.Errorf("span %q has an empty or repeated span id %s", s.Name(), s.SpanID())
		}
		ids[s.SpanID()] = true
		if !want.traceID.IsEmpty() && s.TraceID() != want.traceID {
			t.Errorf("span %q: trace id %s, want %s", s.Name(), s.TraceID(), want.traceID)
		}
		if s.TraceID().IsEmpty() {
			t.Errorf("span %q has an empty trace id", s.Name())
		}
	}
	for _, w := range want.spans {
		var found []recSpan
		for _, s := range got {
			if s.Name() == w.name && s.Kind() == w.kind {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s span: %d spans named %q of kind %s, want 1", w.role, len(found), w.name, w.kind)
			continue
		}
		s := found[0]
		byRole[w.role] = s
		checkSpan(t, s, w)
	}
	for _, w := range want.spans {
		s, ok := byRole[w.role]
		if !ok {
			continue
		}
		wantParent := want.remoteParent
		if w.parent != "" {
			p, ok := byRole[w.parent]
			if !ok {
				continue
			}
			wantParent = p.SpanID()
			if start, pstart := s.StartTimestamp().AsTime(), p.StartTimestamp().AsTime(); start.Add(want.slack).Before(pstart) {
				t.Errorf("%s span starts %v before its parent %s", w.role, pstart.Sub(start), w.parent)
			}
			if end, pend := s.EndTimestamp().AsTime(), p.EndTimestamp().AsTime(); !w.mayOutliveParent && end.After(pend.Add(want.slack)) {
				t.Errorf("%s span ends %v after its parent %s", w.role, end.Sub(pend), w.parent)
			}
		}
		if s.ParentSpanID() != wantParent {
			t.Errorf("%s span's parent span id = %s, want %s (%s)", w.role, s.ParentSpanID(), wantParent, parentRole(w))
		}
	}
	for _, pair := range want.endsBefore {
		a, okA := byRole[pair[0]]
		b, okB := byRole[pair[1]]
		if okA && okB && a.EndTimestamp().AsTime().After(b.StartTimestamp().AsTime().Add(want.slack)) {
			t.Errorf("%s span ends %v after the %s span starts", pair[0],
				a.EndTimestamp().AsTime().Sub(b.StartTimestamp().AsTime()), pair[1])
		}
	}
	return byRole
}

func roles(ws []spanWant) string {
	var r []string
	for _, w := range ws {
		r = append(r, w.role)
	}
	return strings.Join(r, ", ")
}

func parentRole(w spanWant) string {
	if w.parent == "" {
		return "the remote parent, or none"
	}
	return "the " + w.parent + " span"
}

// checkSpan checks one span's own fields against w.
func checkSpan(t *testing.T, s recSpan, w spanWant) {
	t.Helper()
	if s.scope.Name() != w.scope || s.scope.Version() != w.scopeVersion {
		t.Errorf("%s span: scope %q version %q, want %q version %q", w.role, s.scope.Name(), s.scope.Version(), w.scope, w.scopeVersion)
	}
	if s.scopeSchemaURL != "" {
		t.Errorf("%s span: scope schema URL %q, want none", w.role, s.scopeSchemaURL)
	}
	if got, want := attrKey(s.Attributes()), attrs(w.attrs); got != want {
		t.Errorf("%s span attributes:\n got {%s}\nwant {%s}", w.role, got, want)
	}
	if s.Status().Code() != w.status || s.Status().Message() != "" {
		t.Errorf("%s span status = %s %q, want %s with no message", w.role, s.Status().Code(), s.Status().Message(), w.status)
	}
	var events []string
	for i := 0; i < s.Events().Len(); i++ {
		events = append(events, s.Events().At(i).Name())
	}
	if !slices.Equal(events, w.events) {
		t.Errorf("%s span events = %q, want %q", w.role, events, w.events)
	}
	if s.Links().Len() != 0 {
		t.Errorf("%s span has %d links, want none", w.role, s.Links().Len())
	}
	if s.Flags() != w.flags {
		t.Errorf("%s span flags = %#x, want %#x", w.role, s.Flags(), w.flags)
	}
	if s.TraceState().AsRaw() != "" {
		t.Errorf("%s span trace state = %q, want none", w.role, s.TraceState().AsRaw())
	}
	if s.EndTimestamp() < s.StartTimestamp() || s.StartTimestamp() == 0 {
		t.Errorf("%s span: start %v, end %v", w.role, s.StartTimestamp().AsTime(), s.EndTimestamp().AsTime())
	}
}
