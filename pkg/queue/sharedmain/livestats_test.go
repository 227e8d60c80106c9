package sharedmain

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	netstats "knative.dev/networking/pkg/http/stats"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/handler"
	"github.com/queue-proxy/queue-proxy/pkg/queue"
)

// liveChain is the part of the request path the live stats see: their
// layer, the timeout handler, the queue layer (CC=1, queue of 1) and the
// user container's stand-in, which fails through the wrapped error handler
// when asked to.
func liveChain(t *testing.T, ls *liveStats, breaker *queue.Breaker, app http.HandlerFunc) http.Handler {
	t.Helper()
	errorHandler := observeUpstreamErrors(pkghttp.ErrorHandler(zap.NewNop().Sugar()))
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			errorHandler(w, r, errors.New("dial tcp 127.0.0.1:8080: connection refused"))
			return
		}
		app(w, r)
	})
	timeouts := func(*http.Request) (time.Duration, time.Duration, time.Duration) { return 200 * time.Millisecond, 0, 0 }
	proxy := queue.NewProxyHandler(breaker, netstats.NewRequestStats(time.Now()), queue.SpanNames{}, inner, queue.ObserveQueue())
	return ls.layer(handler.NewTimeoutHandler(proxy, "request timeout", timeouts, zap.NewNop().Sugar()))
}

func TestLiveStatsOutcomes(t *testing.T) {
	breaker := queue.NewBreaker(queue.BreakerParams{QueueDepth: 1, MaxConcurrency: 1, InitialCapacity: 1})
	ls := newLiveStats(time.Now(), time.Now, breaker, nil)
	app := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-r.Context().Done() // past the 200 ms timeout
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable) // the app's own: not a queue-full
		default:
			w.Write([]byte("ok"))
		}
	}
	h := liveChain(t, ls, breaker, app)
	serve := func(path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	for path, want := range map[string]int{"/": 200, "/500": 500, "/503": 503, "/fail": 502, "/slow": 504} {
		if got := serve(path); got != want {
			t.Fatalf("%s: %d, want %d", path, got, want)
		}
	}
	// Queue full: the slot and the queue's one place taken.
	if err := breaker.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- breaker.Acquire(qctx) }()
	for breaker.InFlight() != 2 {
		time.Sleep(time.Millisecond) // until the waiter is queued
	}
	if got := serve("/"); got != 503 {
		t.Fatalf("queue full: %d, want 503", got)
	}
	// The gauges, while one runs and one waits.
	w := httptest.NewRecorder()
	ls.ServeHTTP(w, httptest.NewRequest(http.MethodGet, debugStatsPath, nil))
	cancel()
	<-queued
	breaker.Release()

	var doc debugStats
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, w.Body.String())
	}
	if doc.InFlight != 1 || doc.Queued != 1 {
		t.Errorf("in flight %d, queued %d; want 1, 1", doc.InFlight, doc.Queued)
	}
	if len(doc.Windows) == 0 {
		t.Fatal("no windows")
	}
	win := doc.Windows[0]
	if win.Requests != 6 || win.Admitted != 5 || win.OK != 1 || win.QueueFull != 1 || win.Timeouts != 1 || win.UpstreamErrors != 1 || win.OtherErrors != 2 {
		t.Errorf("window %s: %+v\nwant 6 requests, 5 admitted, 1 ok, 1 queue full, 1 timeout, 1 upstream error, 2 other errors", win.Name, win)
	}
	if win.Total.Count != 6 || win.UserContainer.Count != 5 || win.Total.P99Ms < 190 {
		t.Errorf("latencies: total %+v, user container %+v; want 6 and 5 samples, a P99 of total ≥ 190 ms (the 200 ms timeout, within the bucket error)", win.Total, win.UserContainer)
	}
}

func TestLiveStatsText(t *testing.T) {
	tl, _ := fakeTimeline()
	tl.mark(phaseEnvParsed)
	ls := newLiveStats(time.Now(), time.Now, nil, tl)
	for _, tc := range []struct {
		accept, query string
		wantText      bool
	}{
		{"", "", false},
		{"application/json", "", false},
		{"text/plain", "", true},
		{"text/plain, application/json", "", false},
		{"", "?format=text", true},
		{"text/plain", "?format=json", false},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, debugStatsPath+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		ls.ServeHTTP(w, r)
		isText := strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain")
		if isText != tc.wantText {
			t.Errorf("Accept %q, query %q: Content-Type %q, want text %v", tc.accept, tc.query, w.Header().Get("Content-Type"), tc.wantText)
		}
		if isText && !strings.Contains(w.Body.String(), "envParsed") {
			t.Errorf("text without the startup timeline:\n%s", w.Body.String())
		}
		if !isText && !json.Valid(w.Body.Bytes()) {
			t.Errorf("invalid JSON: %s", w.Body.String())
		}
	}
}

// BenchmarkLiveStatsLayer is the layer's cost per request (the writer, two
// clock readings, the record) around a handler that does nothing.
func BenchmarkLiveStatsLayer(b *testing.B) {
	ls := newLiveStats(time.Now(), time.Now, nil, nil)
	h := ls.layer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if o, ok := pkghttp.FindWriter[queue.QueueObserver](w); ok {
			o.QueueDone(0, true)
			o.UpstreamDone(time.Millisecond)
		}
	}))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
