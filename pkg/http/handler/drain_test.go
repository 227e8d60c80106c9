package handler

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"knative.dev/networking/pkg/http/header"
)

const (
	testQuiet        = 30 * time.Second
	shuttingDownBody = "shutting down\n"
	missingHashBody  = `a probe request must contain a non-empty "K-Network-Hash" header` + "\n"
	textPlainUTF8    = "text/plain; charset=utf-8"
	innerStatus      = http.StatusAccepted
	innerBody        = "inner"
	healthStatus     = http.StatusNonAuthoritativeInfo
	healthBody       = "health"
)

var queueProxyUAPrefixes = []string{"Knative-Activator-Probe", "Knative-Autoscaling-Probe"}

// waitFor polls cond until it holds, failing the test after 10s. It waits
// for other goroutines to reach a state, never for time to pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// returned reports whether ch is closed, without blocking.
func returned(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// mustReturn fails the test if ch is not closed within 10s.
func mustReturn(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// rearmedOr is a waitFor condition: the quiet timer is armed again, or
// Drain has returned (which the caller then reports as a failure).
func rearmedOr(fc *clocktesting.FakeClock, done <-chan struct{}) func() bool {
	return func() bool { return fc.HasWaiters() || returned(done) }
}

// drainCallers returns how many Drain calls have joined the current drain.
func drainCallers(d *Drainer) int32 {
	if s := d.state.Load(); s != nil {
		return s.callers.Load()
	}
	return 0
}

// startDrain calls d.Drain in a goroutine; the channel closes when it returns.
func startDrain(d *Drainer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Drain()
	}()
	return done
}

type countingHandler struct {
	status int
	body   string
	calls  atomic.Int64
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.calls.Add(1)
	w.WriteHeader(h.status)
	_, _ = w.Write([]byte(h.body))
}

func newTestDrainer(fc *clocktesting.FakeClock) (*Drainer, *countingHandler, *countingHandler) {
	inner := &countingHandler{status: innerStatus, body: innerBody}
	health := &countingHandler{status: healthStatus, body: healthBody}
	return &Drainer{
		Inner:                 inner,
		HealthCheck:           health,
		HealthCheckUAPrefixes: queueProxyUAPrefixes,
		QuietPeriod:           testQuiet,
		Clock:                 fc,
	}, inner, health
}

func TestDrainerServeHTTP(t *testing.T) {
	type want struct {
		status int
		body   string
		hash   string // expected K-Network-Hash response header
		inner  bool   // Inner was called
		health bool   // HealthCheck was called
	}
	var (
		toInner     = want{status: innerStatus, body: innerBody, inner: true}
		toHealth    = want{status: healthStatus, body: healthBody, health: true}
		shutting    = want{status: http.StatusServiceUnavailable, body: shuttingDownBody}
		missingHash = want{status: http.StatusBadRequest, body: missingHashBody}
	)
	tests := []struct {
		name        string
		method      string
		path        string
		headers     map[string][]string
		notDraining want
		draining    want
	}{{
		name:        "plain request",
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "kube-probe UA",
		headers:     map[string][]string{"User-Agent": {"kube-probe/1.30"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "kube-probe UA, any path and method",
		method:      http.MethodPost,
		path:        "/some/app/path?x=1",
		headers:     map[string][]string{"User-Agent": {"kube-probe/1.30"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "kube-probe UA wins over K-Network-Probe: probe",
		headers:     map[string][]string{"User-Agent": {"kube-probe/1.30"}, "K-Network-Probe": {"probe"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "activator UA",
		headers:     map[string][]string{"User-Agent": {"Knative-Activator-Probe"}, "K-Network-Probe": {"queue"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "autoscaling UA",
		headers:     map[string][]string{"User-Agent": {"Knative-Autoscaling-Probe"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "configured UA prefix with suffix",
		headers:     map[string][]string{"User-Agent": {"Knative-Activator-Probe/1.0"}},
		notDraining: toHealth,
		draining:    shutting,
	}, {
		name:        "kube-probe without slash is not a health check",
		headers:     map[string][]string{"User-Agent": {"kube-probe"}},
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "kube-probe not at the start is not a health check",
		headers:     map[string][]string{"User-Agent": {"curl kube-probe/1.30"}},
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "UA prefixes are case sensitive",
		headers:     map[string][]string{"User-Agent": {"Kube-Probe/1.30"}},
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "K-Kubelet-Probe header does not count",
		headers:     map[string][]string{"K-Kubelet-Probe": {"queue"}, "User-Agent": {"curl/8"}},
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "network probe with hash",
		headers:     map[string][]string{"K-Network-Probe": {"probe"}, "K-Network-Hash": {"abc123"}},
		notDraining: want{status: http.StatusOK, hash: "abc123"},
		draining:    shutting,
	}, {
		name:        "network probe with hash, any path and method",
		method:      http.MethodDelete,
		path:        "/healthz",
		headers:     map[string][]string{"K-Network-Probe": {"probe"}, "K-Network-Hash": {"h"}},
		notDraining: want{status: http.StatusOK, hash: "h"},
		draining:    shutting,
	}, {
		name:        "network probe without hash",
		headers:     map[string][]string{"K-Network-Probe": {"probe"}},
		notDraining: missingHash,
		draining:    shutting,
	}, {
		name:        "network probe with empty hash",
		headers:     map[string][]string{"K-Network-Probe": {"probe"}, "K-Network-Hash": {""}},
		notDraining: missingHash,
		draining:    shutting,
	}, {
		name:        "K-Network-Probe other value goes inside",
		headers:     map[string][]string{"K-Network-Probe": {"queue"}},
		notDraining: toInner,
		draining:    toInner,
	}, {
		name:        "K-Network-Probe value is case sensitive",
		headers:     map[string][]string{"K-Network-Probe": {"Probe"}, "K-Network-Hash": {"h"}},
		notDraining: toInner,
		draining:    toInner,
	}}

	for _, tc := range tests {
		for _, draining := range []bool{false, true} {
			name := tc.name + "/not draining"
			w := tc.notDraining
			if draining {
				name = tc.name + "/draining"
				w = tc.draining
			}
			t.Run(name, func(t *testing.T) {
				fc := clocktesting.NewFakeClock(time.Now())
				d, inner, health := newTestDrainer(fc)
				if draining {
					done := startDrain(d)
					t.Cleanup(func() {
						d.Reset()
						<-done
					})
					waitFor(t, "draining", d.Draining)
				}

				method := tc.method
				if method == "" {
					method = http.MethodGet
				}
				path := tc.path
				if path == "" {
					path = "/"
				}
				req := httptest.NewRequest(method, path, nil)
				for k, v := range tc.headers {
					req.Header[k] = v
				}
				rec := httptest.NewRecorder()
				d.ServeHTTP(rec, req)

				if rec.Code != w.status {
					t.Errorf("status = %d, want %d", rec.Code, w.status)
				}
				if got := rec.Body.String(); got != w.body {
					t.Errorf("body = %q, want %q", got, w.body)
				}
				if got := rec.Header().Get(header.HashKey); got != w.hash {
					t.Errorf("K-Network-Hash = %q, want %q", got, w.hash)
				}
				if got, want := inner.calls.Load() == 1, w.inner; got != want {
					t.Errorf("inner called = %v, want %v", got, want)
				}
				if got, want := health.calls.Load() == 1, w.health; got != want {
					t.Errorf("health check called = %v, want %v", got, want)
				}
				// Errors the drainer writes itself use http.Error semantics.
				if w.status == http.StatusServiceUnavailable || w.status == http.StatusBadRequest {
					if got := rec.Header().Get("Content-Type"); got != textPlainUTF8 {
						t.Errorf("Content-Type = %q, want %q", got, textPlainUTF8)
					}
					if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
						t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
					}
				}
			})
		}
	}
}

func TestDrainerNilHealthCheck(t *testing.T) {
	inner := &countingHandler{status: innerStatus, body: innerBody}
	d := &Drainer{Inner: inner}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("User-Agent", "kube-probe/1.30")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("got %d %q, want 200 with an empty body", rec.Code, rec.Body.String())
	}
	if inner.calls.Load() != 0 {
		t.Error("a health check reached Inner")
	}
}

func TestDrainerQuietPeriod(t *testing.T) {
	tests := []struct {
		name  string
		quiet time.Duration
		want  time.Duration
	}{
		{name: "configured", quiet: 30 * time.Second, want: 30 * time.Second},
		{name: "short", quiet: time.Millisecond, want: time.Millisecond},
		{name: "zero means default", quiet: 0, want: 45 * time.Second},
		{name: "negative means default", quiet: -time.Second, want: 45 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(time.Now())
			d, _, _ := newTestDrainer(fc)
			d.QuietPeriod = tc.quiet
			done := startDrain(d)
			waitFor(t, "quiet timer", fc.HasWaiters)

			fc.Step(tc.want - time.Nanosecond)
			if fc.Waiters() != 1 {
				t.Fatalf("quiet timer fired before %v", tc.want)
			}
			if returned(done) {
				t.Fatal("Drain returned before the quiet period")
			}
			fc.Step(time.Nanosecond)
			mustReturn(t, "Drain", done)
			if !d.Draining() {
				t.Error("Draining() = false after the drain completed, want true until Reset")
			}
		})
	}
}

func TestDrainerTrafficRestartsQuietPeriod(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	d, inner, health := newTestDrainer(fc)
	done := startDrain(d)
	waitFor(t, "quiet timer", fc.HasWaiters)

	serve := func(ua string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		d.ServeHTTP(httptest.NewRecorder(), req)
	}

	// A request at 20s moves the end of the quiet period to 50s.
	fc.Step(20 * time.Second)
	serve("")
	if inner.calls.Load() != 1 {
		t.Fatal("request was not served while draining")
	}
	// Probes do not count as traffic.
	serve("kube-probe/1.30")
	if health.calls.Load() != 0 {
		t.Fatal("health check answered by HealthCheck while draining")
	}

	// 35s: the original timer fires and is re-armed for the remaining 15s.
	fc.Step(15 * time.Second)
	waitFor(t, "re-armed quiet timer", rearmedOr(fc, done))
	if returned(done) {
		t.Fatal("Drain returned 15s after the last request")
	}

	// Another request at 45s moves the end to 75s.
	fc.Step(10 * time.Second)
	serve("")
	fc.Step(5 * time.Second) // 50s: fires, re-armed for 25s
	waitFor(t, "re-armed quiet timer", rearmedOr(fc, done))
	if returned(done) {
		t.Fatal("Drain returned 5s after the last request")
	}

	fc.Step(25*time.Second - time.Nanosecond)
	if fc.Waiters() != 1 || returned(done) {
		t.Fatal("Drain finished before a full quiet period after the last request")
	}
	fc.Step(time.Nanosecond) // 75s
	mustReturn(t, "Drain", done)

	// Completed: further Drain calls return at once, probes still fail.
	mustReturn(t, "Drain after completion", startDrain(d))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("User-Agent", "kube-probe/1.30")
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("probe after completed drain: status = %d, want 503", rec.Code)
	}
	d.Reset()
	if d.Draining() {
		t.Error("Draining() = true after Reset")
	}
}

func TestDrainerConcurrentDrainAndReset(t *testing.T) {
	const callers = 8
	fc := clocktesting.NewFakeClock(time.Now())
	d, _, health := newTestDrainer(fc)

	for round := range 3 { // Drain after Reset starts a new drain.
		var wg sync.WaitGroup
		var finished atomic.Int64
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.Drain()
				finished.Add(1)
			}()
		}
		waitFor(t, "all callers inside Drain", func() bool { return drainCallers(d) == callers })
		waitFor(t, "quiet timer", fc.HasWaiters)
		fc.Step(testQuiet - time.Second)
		if n := fc.Waiters(); n != 1 {
			t.Fatalf("round %d: %d clock waiters, want one quiet timer", round, n)
		}
		if n := finished.Load(); n != 0 {
			t.Fatalf("round %d: %d Drain callers returned before Reset", round, n)
		}

		// Concurrent Resets release every caller.
		var resets sync.WaitGroup
		for range 3 {
			resets.Add(1)
			go func() {
				defer resets.Done()
				d.Reset()
			}()
		}
		resets.Wait()
		allDone := make(chan struct{})
		go func() {
			wg.Wait()
			close(allDone)
		}()
		mustReturn(t, "Drain callers after Reset", allDone)
		waitFor(t, "quiet timer stopped", func() bool { return !fc.HasWaiters() })

		if d.Draining() {
			t.Fatalf("round %d: Draining() = true after Reset", round)
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("User-Agent", "Knative-Activator-Probe")
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != healthStatus {
			t.Fatalf("round %d: probe after Reset: status = %d, want %d from HealthCheck", round, rec.Code, healthStatus)
		}
	}
	if got := health.calls.Load(); got != 3 {
		t.Errorf("HealthCheck calls = %d, want 3", got)
	}
}

func TestDrainerConcurrentDrainCompletes(t *testing.T) {
	const callers = 8
	fc := clocktesting.NewFakeClock(time.Now())
	d, _, _ := newTestDrainer(fc)

	var wg sync.WaitGroup
	var finished atomic.Int64
	wg.Add(callers)
	for range callers {
		go func() {
			defer wg.Done()
			d.Drain()
			finished.Add(1)
		}()
	}
	waitFor(t, "all callers inside Drain", func() bool { return drainCallers(d) == callers })
	waitFor(t, "quiet timer", fc.HasWaiters)
	fc.Step(testQuiet - time.Nanosecond)
	if n := finished.Load(); n != 0 {
		t.Fatalf("%d Drain callers returned before the quiet period", n)
	}
	fc.Step(time.Nanosecond)
	allDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(allDone)
	}()
	mustReturn(t, "all Drain callers", allDone)
	d.Reset()
}

func TestDrainerResetWhenIdle(t *testing.T) {
	d, _, _ := newTestDrainer(clocktesting.NewFakeClock(time.Now()))
	d.Reset() // no drain: must not panic or block
	if d.Draining() {
		t.Error("Draining() = true")
	}
}

func TestDrainerConcurrentTraffic(t *testing.T) {
	// Requests racing with Drain and Reset (run with -race).
	fc := clocktesting.NewFakeClock(time.Now())
	d, inner, _ := newTestDrainer(fc)
	const workers, perWorker = 4, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			}
		}()
	}
	for range 5 {
		done := startDrain(d)
		waitFor(t, "draining", d.Draining)
		d.Reset()
		mustReturn(t, "Drain", done)
	}
	wg.Wait()
	if got := inner.calls.Load(); got != workers*perWorker {
		t.Errorf("inner calls = %d, want %d", got, workers*perWorker)
	}
}

// discardWriter is a ResponseWriter that allocates nothing per request.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

type nopHandler struct{}

func (nopHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func BenchmarkDrainer(b *testing.B) {
	newReq := func(h map[string]string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	benches := []struct {
		name     string
		req      *http.Request
		draining bool
	}{
		{name: "normal/not-draining", req: newReq(map[string]string{"User-Agent": "curl/8.0"})},
		{name: "normal-no-UA/not-draining", req: newReq(nil)},
		{name: "normal/draining", req: newReq(map[string]string{"User-Agent": "curl/8.0"}), draining: true},
		{name: "health-check/not-draining", req: newReq(map[string]string{"User-Agent": "Knative-Activator-Probe"})},
		{name: "health-check/draining", req: newReq(map[string]string{"User-Agent": "kube-probe/1.30"}), draining: true},
		{name: "network-probe/not-draining", req: newReq(map[string]string{"K-Network-Probe": "probe", "K-Network-Hash": "h"})},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			d := &Drainer{
				Inner:                 nopHandler{},
				HealthCheck:           nopHandler{},
				HealthCheckUAPrefixes: queueProxyUAPrefixes,
				QuietPeriod:           time.Hour,
			}
			if bb.draining {
				done := startDrain(d)
				defer func() {
					d.Reset()
					<-done
				}()
				waitFor(b, "draining", d.Draining)
			}
			w := &discardWriter{h: make(http.Header, 4)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clear(w.h)
				d.ServeHTTP(w, bb.req)
			}
		})
	}
}
