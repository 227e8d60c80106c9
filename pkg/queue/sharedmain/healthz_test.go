package sharedmain

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// healthzServe calls h once and decodes the answer.
func healthzServe(t *testing.T, h *healthz) (int, healthzBody) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, healthzPath, nil))
	var body healthzBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return w.Code, body
}

// healthzListener is a loopback listener whose accept loop runs (serve) or
// not.
func healthzListener(t *testing.T, clk *clocktesting.FakeClock, serve bool) *acceptTracker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := newAcceptTracker(ln, clk)
	done := make(chan struct{})
	if serve {
		go func() {
			defer close(done)
			for {
				c, err := tr.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	} else {
		close(done)
	}
	t.Cleanup(func() { ln.Close(); <-done })
	return tr
}

func TestHealthz(t *testing.T) {
	const period = time.Second
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		listening  bool // the main listener is open
		serving    bool // its accept loop runs
		sinceTick  time.Duration
		draining   bool
		wantCode   int
		wantStatus string
		wantReason string
	}{
		{name: "fresh", listening: true, serving: true, sinceTick: period, wantCode: 200, wantStatus: "ok"},
		{name: "tick at twice the period", listening: true, serving: true, sinceTick: 2 * period, wantCode: 200, wantStatus: "ok"},
		{name: "ticker stale", listening: true, serving: true, sinceTick: 2*period + time.Millisecond, wantCode: 503, wantStatus: "stale", wantReason: "stats ticker"},
		{name: "not listening yet", sinceTick: 0, wantCode: 503, wantStatus: "stale", wantReason: "not listening"},
		{name: "accept loop stuck", listening: true, serving: false, sinceTick: 0, wantCode: 503, wantStatus: "stale", wantReason: "does not accept"},
		{name: "draining, ticker stale", listening: true, serving: false, sinceTick: time.Hour, draining: true, wantCode: 200, wantStatus: "draining"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(start)
			h := newHealthz(clk, period, func() bool { return tc.draining })
			h.timeout = 100 * time.Millisecond
			if tc.listening {
				tr := healthzListener(t, clk, tc.serving)
				h.accepts.Store(tr)
			}
			// No connection was accepted lately: the check connects.
			clk.Step(10 * period)
			h.ticked(clk.Now())
			clk.Step(tc.sinceTick)

			code, body := healthzServe(t, h)
			if code != tc.wantCode || body.Status != tc.wantStatus {
				t.Errorf("got %d %q (%q), want %d %q", code, body.Status, body.Reason, tc.wantCode, tc.wantStatus)
			}
			if !strings.Contains(body.Reason, tc.wantReason) || (tc.wantReason == "") != (body.Reason == "") {
				t.Errorf("reason %q, want one containing %q", body.Reason, tc.wantReason)
			}
			if !body.CurrentTime.Equal(clk.Now()) || !body.LastUpdated.Equal(clk.Now().Add(-tc.sinceTick)) {
				t.Errorf("times %v, %v; want currentTime %v, lastUpdated %v", body.CurrentTime, body.LastUpdated, clk.Now(), clk.Now().Add(-tc.sinceTick))
			}
		})
	}
}

// TestHealthzRecentAccept checks that a connection accepted within twice
// the period spares the self-connection: the check passes even though the
// loop no longer accepts.
func TestHealthzRecentAccept(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	h := newHealthz(clk, time.Second, func() bool { return false })
	h.timeout = 100 * time.Millisecond
	tr := healthzListener(t, clk, false)
	h.accepts.Store(tr)

	// One connection accepted by hand, now.
	c, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := tr.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if code, body := healthzServe(t, h); code != 200 {
		t.Fatalf("after a recent accept: %d %+v, want 200", code, body)
	}
	clk.Step(2*time.Second + time.Millisecond)
	h.ticked(clk.Now())
	if code, body := healthzServe(t, h); code != 503 {
		t.Fatalf("accept older than twice the period, loop stuck: %d %+v, want 503", code, body)
	}
}

// TestAcceptTrackerCounts checks that the tracker records every accepted
// connection and passes errors through.
func TestAcceptTrackerCounts(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	var accepted atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := newAcceptTracker(ln, clk)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := tr.Accept()
			if err != nil {
				done <- err
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	if err := tr.check(t.Context(), 5*time.Second); err != nil {
		t.Fatal("check on a serving listener:", err)
	}
	if got := time.Unix(0, tr.last.Load()); !got.Equal(clk.Now()) {
		t.Errorf("last accept %v, want %v", got, clk.Now())
	}
	ln.Close()
	if err := <-done; err == nil {
		t.Error("Accept after Close returned no error")
	}
	if accepted.Load() != 1 {
		t.Errorf("%d accepted, want 1", accepted.Load())
	}
}

func TestLoopbackAddr(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8012}, "127.0.0.1:8012"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8012}, "127.0.0.1:8012"},
		{&net.TCPAddr{Port: 8012}, "127.0.0.1:8012"},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8012}, "10.1.2.3:8012"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8012}, "[::1]:8012"},
	} {
		if got := loopbackAddr(tc.addr); got != tc.want {
			t.Errorf("loopbackAddr(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
