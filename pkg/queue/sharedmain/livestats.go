package sharedmain

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/observability/livestats"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

// debugStatsPath is the debug listener's live figures (/debug/stats).
const debugStatsPath = "/debug/stats"

// liveStats feeds /debug/stats: a layer of the request path records every
// request that is not a probe (the drainer answers those before it), and
// the stats ticker rotates its windows. How a request ended comes from the
// layers that know, through the writer chain: the queue layer (wait,
// admission, user-container time: queue.QueueObserver), the timeout
// handler (handler.TimeoutObserver) and the upstream error handler
// (upstreamFailed). Recording allocates nothing: the writer is pooled.
type liveStats struct {
	rec      *livestats.Recorder
	breaker  *queue.Breaker // nil: unlimited concurrency
	timeline *timeline
	now      func() time.Time
	writers  sync.Pool // of *liveWriter
}

func newLiveStats(start time.Time, now func() time.Time, breaker *queue.Breaker, tl *timeline) *liveStats {
	ls := &liveStats{rec: livestats.New(start), breaker: breaker, timeline: tl, now: now}
	ls.writers.New = func() any { return new(liveWriter) }
	return ls
}

// layer records the requests that pass through it; it belongs just outside
// the timeout handler, so that the 504 is written through its writer.
func (ls *liveStats) layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := ls.writers.Get().(*liveWriter)
		lw.reset(w)
		start := ls.now()
		defer ls.finish(lw, start) // also when next panics (an aborted response)
		next.ServeHTTP(lw, r)
	})
}

// finish records lw's request and returns lw to the pool.
func (ls *liveStats) finish(lw *liveWriter, start time.Time) {
	s := livestats.Sample{
		Total:     ls.now().Sub(start),
		QueueWait: lw.wait,
		Upstream:  lw.upstream,
		Admitted:  lw.admitted,
	}
	switch {
	case lw.timedOut.Load():
		s.Outcome = livestats.Timeout
	case lw.rejected && lw.ResponseCode == http.StatusServiceUnavailable:
		s.Outcome = livestats.QueueFull
	case lw.upstreamErr:
		s.Outcome = livestats.UpstreamError
	case lw.ResponseCode >= 500:
		s.Outcome = livestats.OtherError
	}
	ls.rec.Record(s)
	lw.reset(nil)
	ls.writers.Put(lw)
}

// rotater returns what advances the windows, for the stats ticker; nil
// when ls is nil.
func (ls *liveStats) rotater() func(time.Time) {
	if ls == nil {
		return nil
	}
	return ls.rec.Rotate
}

// debugStats is /debug/stats' JSON document: the windows and gauges, and
// the cold-start timeline.
type debugStats struct {
	livestats.Snapshot
	Startup timelineDoc `json:"startup"`
}

// ServeHTTP answers /debug/stats: JSON, or the plain-text tables when the
// client asks for text (Accept: text/plain, or ?format=text).
func (ls *liveStats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	snap := ls.rec.Snapshot(ls.now())
	if ls.breaker != nil {
		inFlight := int64(ls.breaker.InFlight()) // running and queued
		capacity := int64(ls.breaker.Capacity())
		snap.InFlight = min(inFlight, capacity)
		snap.Queued = max(inFlight-capacity, 0)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if wantsText(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = snap.WriteText(w)
		if ls.timeline != nil {
			writeTimelineText(w, ls.timeline.doc())
		}
		return
	}
	doc := debugStats{Snapshot: snap}
	if ls.timeline != nil {
		doc.Startup = ls.timeline.doc()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc)
}

// wantsText says whether the client asked for the plain-text tables.
func wantsText(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "text"
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/plain") && !strings.Contains(accept, "application/json")
}

// writeTimelineText appends the startup timeline to the text tables.
func writeTimelineText(w http.ResponseWriter, d timelineDoc) {
	var b strings.Builder
	b.WriteString("\nstartup (ms since process start ")
	b.WriteString(d.ProcessStart.Format(time.RFC3339Nano))
	b.WriteString(")\n")
	for _, p := range d.Phases {
		b.WriteString("  ")
		b.WriteString(p.Phase)
		b.WriteString(strings.Repeat(" ", max(1, 22-len(p.Phase))))
		b.WriteString(strconv.FormatFloat(p.AtMs, 'f', 3, 64))
		b.WriteString("\n")
	}
	b.WriteString("  readinessChecks       ")
	b.WriteString(strconv.FormatInt(d.ReadinessChecks, 10))
	b.WriteString("\n")
	_, _ = w.Write([]byte(b.String()))
}

// upstreamFailed is implemented by liveWriter: the error handler tells it
// that the user container could not be reached or broke the exchange.
type upstreamFailed interface{ UpstreamFailed() }

// observeUpstreamErrors wraps the proxy's error handler to tell the live
// stats' writer of each failure it answers (not of cancellations, which it
// does not answer).
func observeUpstreamErrors(eh func(http.ResponseWriter, *http.Request, error)) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if !errors.Is(err, context.Canceled) {
			if o, ok := pkghttp.FindWriter[upstreamFailed](w); ok {
				o.UpstreamFailed()
			}
		}
		eh(w, r, err)
	}
}

// liveWriter is the writer the live stats layer passes on: a response
// recorder (status) that the inner layers tell how the request fared.
type liveWriter struct {
	pkghttp.ResponseRecorder
	wait, upstream time.Duration
	admitted       bool
	rejected       bool // the breaker turned it away
	upstreamErr    bool
	timedOut       atomic.Bool // set on the timeout's goroutine
}

var (
	_ queue.QueueObserver = (*liveWriter)(nil)
	_ upstreamFailed      = (*liveWriter)(nil)
)

func (lw *liveWriter) reset(w http.ResponseWriter) {
	lw.ResponseRecorder.Reset(w, http.StatusOK)
	lw.wait, lw.upstream = 0, 0
	lw.admitted, lw.rejected, lw.upstreamErr = false, false, false
	lw.timedOut.Store(false)
}

// QueueDone implements queue.QueueObserver.
func (lw *liveWriter) QueueDone(wait time.Duration, admitted bool) {
	lw.wait, lw.admitted, lw.rejected = wait, admitted, !admitted
}

// UpstreamDone implements queue.QueueObserver.
func (lw *liveWriter) UpstreamDone(d time.Duration) { lw.upstream = d }

// TimedOut implements handler.TimeoutObserver.
func (lw *liveWriter) TimedOut() { lw.timedOut.Store(true) }

// UpstreamFailed implements upstreamFailed.
func (lw *liveWriter) UpstreamFailed() { lw.upstreamErr = true }
