package sharedmain

import (
	"cmp"
	crand "crypto/rand"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opencensus.io/trace"
	"go.uber.org/zap"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
)

// processStart is when this package was initialised: within a millisecond
// or so of exec, before main runs. The startup timeline counts from it.
var processStart = time.Now()

// phase is one step of a cold start, in the order they normally happen.
type phase int

const (
	phaseEnvParsed     phase = iota // the environment read and validated
	phaseListening                  // every listener open
	phaseFirstProbe                 // the first readiness check of the user container began
	phaseUserReady                  // the user container first seen ready
	phaseFirstProbe200              // the first kubelet or activator probe answered 200
	phaseFirstRequest               // the first request passed on to the user container
	phaseCount
)

// phaseInfo names a phase: key in the log line and /debug/stats, and its
// span's name (a span runs from the previous phase to this one).
var phaseInfo = [phaseCount]struct{ key, span string }{
	phaseEnvParsed:     {"envParsed", "parse environment"},
	phaseListening:     {"listening", "open listeners"},
	phaseFirstProbe:    {"firstReadinessCheck", "wait for the first probe"},
	phaseUserReady:     {"userContainerReady", "wait for the user container"},
	phaseFirstProbe200: {"firstProbe200", "answer the first probe"},
	phaseFirstRequest:  {"firstRequest", "wait for the first request"},
}

// startupSpanName is the root span of the startup trace, named after what
// ran so that the trace reads by itself.
const startupSpanName = "queue-proxy startup"

// timeline records when each phase of the cold start first happened, for
// one log line when the proxy first answers a probe with 200 (ready), the
// /debug/stats document and, with tracing on, one trace per process start.
//
// Marking is safe from any goroutine and costs one atomic load once the
// phase is marked, so the request path may call it.
type timeline struct {
	start  time.Time
	now    func() time.Time
	marks  [phaseCount]atomic.Int64 // nanoseconds since start; 0 = not yet
	checks atomic.Int64             // readiness checks until the user container was ready

	// onReady runs once, when phaseFirstProbe200 is marked; onFirstRequest
	// once, when phaseFirstRequest is.
	onReady, onFirstRequest func()
}

func newTimeline(start time.Time, now func() time.Time) *timeline {
	return &timeline{start: start, now: now}
}

// mark records p now, if it is not yet recorded, and reports whether this
// call recorded it.
func (t *timeline) mark(p phase) bool {
	if t.marks[p].Load() != 0 {
		return false
	}
	d := max(int64(t.now().Sub(t.start)), 1) // 0 means "not yet"
	if !t.marks[p].CompareAndSwap(0, d) {
		return false
	}
	switch {
	case p == phaseFirstProbe200 && t.onReady != nil:
		t.onReady()
	case p == phaseFirstRequest && t.onFirstRequest != nil:
		t.onFirstRequest()
	}
	return true
}

// at returns when p happened, since start, and whether it has.
func (t *timeline) at(p phase) (time.Duration, bool) {
	d := t.marks[p].Load()
	return time.Duration(d), d != 0
}

// prober wraps the readiness check: it marks the first check and, when a
// check first succeeds, the user container's readiness with the number of
// checks it took.
func (t *timeline) prober(check func() bool) func() bool {
	return func() bool {
		t.mark(phaseFirstProbe)
		if _, ready := t.at(phaseUserReady); ready {
			return check()
		}
		t.checks.Add(1)
		ok := check()
		if ok {
			t.mark(phaseUserReady)
		}
		return ok
	}
}

// probes wraps the handler of kubelet's and the activator's probes to mark
// the first one answered 200.
func (t *timeline) probes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, done := t.at(phaseFirstProbe200); done {
			h.ServeHTTP(w, r)
			return
		}
		rec := pkghttp.NewResponseRecorder(w, http.StatusOK) // nothing written: net/http sends 200
		h.ServeHTTP(rec, r)
		if rec.ResponseCode == http.StatusOK {
			t.mark(phaseFirstProbe200)
		}
	})
}

// firstRequest wraps the handler that passes requests on to the user
// container to mark the first.
func (t *timeline) firstRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mark(phaseFirstRequest)
		h.ServeHTTP(w, r)
	})
}

// reachedPhase is a phase that happened, and when (since start).
type reachedPhase struct {
	p  phase
	at time.Duration
}

// reached lists the phases that happened, in order of occurrence (a
// request may come before any probe, for instance).
func (t *timeline) reached() []reachedPhase {
	var out []reachedPhase
	for p := range phaseCount {
		if at, ok := t.at(p); ok {
			out = append(out, reachedPhase{p, at})
		}
	}
	slices.SortStableFunc(out, func(a, b reachedPhase) int { return cmp.Compare(a.at, b.at) })
	return out
}

// timelinePhase is one phase in the timeline's document.
type timelinePhase struct {
	Phase string  `json:"phase"`
	AtMs  float64 `json:"atMs"` // since process start
}

// timelineDoc is the timeline as /debug/stats shows it: the phases that
// happened, in order of occurrence.
type timelineDoc struct {
	ProcessStart    time.Time       `json:"processStart"`
	Phases          []timelinePhase `json:"phases"`
	ReadinessChecks int64           `json:"readinessChecks"`
}

func (t *timeline) doc() timelineDoc {
	d := timelineDoc{ProcessStart: t.start.UTC(), Phases: []timelinePhase{}, ReadinessChecks: t.checks.Load()}
	for _, r := range t.reached() {
		d.Phases = append(d.Phases, timelinePhase{Phase: phaseInfo[r.p].key, AtMs: ms(r.at)})
	}
	return d
}

// logFields are the fields of the "ready" log line: each phase reached, in
// milliseconds since process start, and the readiness checks.
func (t *timeline) logFields() []zap.Field {
	var fields []zap.Field
	for _, r := range t.reached() {
		fields = append(fields, zap.Float64(phaseInfo[r.p].key+"Ms", ms(r.at)))
	}
	return append(fields, zap.Int64("readinessChecks", t.checks.Load()))
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// startupTrace is the one trace of a process start: a root span named
// startupSpanName from process start to the phase that made the proxy
// ready, and a child span per phase, from the phase before it (in time;
// process start for the first) to its mark. The ids are random.
type startupTrace struct {
	mu       sync.Mutex
	traceID  trace.TraceID
	rootID   trace.SpanID
	exported [phaseCount]bool
	rootDone bool
}

func newStartupTrace() *startupTrace {
	st := &startupTrace{}
	_, _ = crand.Read(st.traceID[:])
	_, _ = crand.Read(st.rootID[:])
	return st
}

// spans returns the spans not returned before: with withRoot, the root
// span (once), ending at the last phase reached, and a child per phase
// reached; without, only once the root was returned, a child per phase
// reached since (ending after the root).
func (st *startupTrace) spans(t *timeline, withRoot bool) []*trace.SpanData {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !withRoot && !st.rootDone {
		return nil // the root's call will return them
	}
	var out []*trace.SpanData
	prev := t.start
	for _, r := range t.reached() {
		end := t.start.Add(r.at)
		if !st.exported[r.p] {
			st.exported[r.p] = true
			sd := &trace.SpanData{
				SpanContext:  trace.SpanContext{TraceID: st.traceID, TraceOptions: 1},
				ParentSpanID: st.rootID,
				Name:         phaseInfo[r.p].span,
				SpanKind:     trace.SpanKindUnspecified,
				StartTime:    prev,
				EndTime:      end,
				Attributes:   map[string]any{"phase": phaseInfo[r.p].key},
			}
			_, _ = crand.Read(sd.SpanID[:])
			if r.p == phaseUserReady {
				sd.Attributes["readiness_checks"] = t.checks.Load()
			}
			out = append(out, sd)
		}
		prev = end
	}
	if withRoot && !st.rootDone && prev.After(t.start) {
		st.rootDone = true
		out = append([]*trace.SpanData{{
			SpanContext: trace.SpanContext{TraceID: st.traceID, SpanID: st.rootID, TraceOptions: 1},
			Name:        startupSpanName,
			SpanKind:    trace.SpanKindUnspecified,
			StartTime:   t.start,
			EndTime:     prev,
		}}, out...)
	}
	return out
}
