package sharedmain

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"go.opencensus.io/trace"
)

// fakeTimeline is a timeline on a settable clock, started at t0.
func fakeTimeline() (*timeline, *time.Time) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := t0
	return newTimeline(t0, func() time.Time { return now }), &now
}

func TestTimelineColdStart(t *testing.T) {
	tl, now := fakeTimeline()
	var readyCalls, firstRequestCalls int
	tl.onReady = func() { readyCalls++ }
	tl.onFirstRequest = func() { firstRequestCalls++ }
	step := func(d time.Duration) { *now = now.Add(d) }

	step(2 * time.Millisecond)
	tl.mark(phaseEnvParsed)
	step(time.Millisecond)
	tl.mark(phaseListening)

	// The user container answers on the third check.
	answers := []bool{false, false, true, false}
	n := 0
	check := tl.prober(func() bool { n++; return answers[n-1] })
	probeOK := false
	probes := tl.probes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !check() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		probeOK = true
		w.Write([]byte("queue"))
	}))
	serveProbe := func() int {
		w := httptest.NewRecorder()
		probes.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		return w.Code
	}
	step(time.Millisecond) // first check at 4 ms
	if code := serveProbe(); code != 503 {
		t.Fatalf("probe %d, want 503", code)
	}
	step(5 * time.Millisecond)
	serveProbe()
	step(5 * time.Millisecond) // ready at 14 ms
	if code := serveProbe(); code != 200 || !probeOK {
		t.Fatalf("probe %d, want 200", code)
	}
	step(time.Millisecond)
	serveProbe() // a later failure changes nothing
	step(10 * time.Millisecond)
	proxied := 0
	h := tl.firstRequest(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied++ }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	step(time.Millisecond)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))

	want := timelineDoc{
		ProcessStart: now.Add(-(2 + 1 + 1 + 5 + 5 + 1 + 10 + 1) * time.Millisecond),
		Phases: []timelinePhase{
			{"envParsed", 2}, {"listening", 3}, {"firstReadinessCheck", 4},
			{"userContainerReady", 14}, {"firstProbe200", 14}, {"firstRequest", 25},
		},
		ReadinessChecks: 3,
	}
	if got := tl.doc(); !reflect.DeepEqual(got, want) {
		t.Errorf("doc\n got %+v\nwant %+v", got, want)
	}
	if readyCalls != 1 || firstRequestCalls != 1 || proxied != 2 {
		t.Errorf("onReady %d, onFirstRequest %d calls, %d proxied; want 1, 1, 2", readyCalls, firstRequestCalls, proxied)
	}
	fields := tl.logFields()
	if len(fields) != 7 || fields[0].Key != "envParsedMs" || fields[6].Key != "readinessChecks" || fields[6].Integer != 3 {
		t.Errorf("log fields %+v", fields)
	}
}

// TestTimelineStatusWriter checks which answers count as a probe's 200.
func TestTimelineProbeStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want bool
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, true},
		{"body only", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("queue")) }, true},
		{"200", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }, true},
		{"503", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, false},
		{"103 then 503", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(103); w.WriteHeader(503) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, _ := fakeTimeline()
			tl.probes(tc.h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			if _, got := tl.at(phaseFirstProbe200); got != tc.want {
				t.Errorf("marked %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartupTraceSpans(t *testing.T) {
	tl, now := fakeTimeline()
	t0 := *now
	at := func(d time.Duration) { *now = t0.Add(d) }
	st := newStartupTrace()

	at(2 * time.Millisecond)
	tl.mark(phaseEnvParsed)
	at(3 * time.Millisecond)
	tl.mark(phaseListening)
	// A request comes before any probe: it is in the trace, in time order.
	at(4 * time.Millisecond)
	tl.mark(phaseFirstRequest)
	at(5 * time.Millisecond)
	tl.prober(func() bool { return true })()
	at(7 * time.Millisecond)
	tl.mark(phaseFirstProbe200)

	type span struct {
		name       string
		start, end time.Duration
		root       bool
	}
	summarize := func(sds []*trace.SpanData) []span {
		var out []span
		for _, sd := range sds {
			if sd.TraceID != st.traceID {
				t.Errorf("span %q in trace %v, want %v", sd.Name, sd.TraceID, st.traceID)
			}
			root := sd.SpanID == st.rootID
			if !root && sd.ParentSpanID != st.rootID {
				t.Errorf("span %q has parent %v, want the root %v", sd.Name, sd.ParentSpanID, st.rootID)
			}
			out = append(out, span{sd.Name, sd.StartTime.Sub(t0), sd.EndTime.Sub(t0), root})
		}
		return out
	}
	got := summarize(st.spans(tl, true))
	want := []span{
		{startupSpanName, 0, 7 * time.Millisecond, true},
		{"parse environment", 0, 2 * time.Millisecond, false},
		{"open listeners", 2 * time.Millisecond, 3 * time.Millisecond, false},
		{"wait for the first request", 3 * time.Millisecond, 4 * time.Millisecond, false},
		{"wait for the first probe", 4 * time.Millisecond, 5 * time.Millisecond, false},
		{"wait for the user container", 5 * time.Millisecond, 5 * time.Millisecond, false},
		{"answer the first probe", 5 * time.Millisecond, 7 * time.Millisecond, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spans\n got %+v\nwant %+v", got, want)
	}
	if again := st.spans(tl, true); len(again) != 0 {
		t.Errorf("spans returned twice: %+v", summarize(again))
	}
}

// TestStartupTraceLateRequest checks that a first request after readiness
// comes as one more child, after the root.
func TestStartupTraceLateRequest(t *testing.T) {
	tl, now := fakeTimeline()
	t0 := *now
	st := newStartupTrace()
	*now = t0.Add(time.Millisecond)
	tl.mark(phaseEnvParsed)
	tl.mark(phaseFirstProbe200)
	if n := len(st.spans(tl, true)); n != 3 {
		t.Fatalf("%d spans at ready, want root and two children", n)
	}
	*now = t0.Add(9 * time.Millisecond)
	tl.mark(phaseFirstRequest)
	got := st.spans(tl, false)
	if len(got) != 1 || got[0].Name != "wait for the first request" || got[0].StartTime.Sub(t0) != time.Millisecond || got[0].EndTime.Sub(t0) != 9*time.Millisecond {
		t.Fatalf("late spans %+v", got)
	}
}
