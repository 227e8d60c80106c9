package handler

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// manualTickClock is a fake clock whose tickers tick only when the test
// calls tick, over an unbuffered channel: a tick is delivered only once
// Drain is back in its select, i.e. after it has handled the previous one.
type manualTickClock struct {
	*clocktesting.FakeClock

	mu      sync.Mutex
	tickers []*manualTicker
}

type manualTicker struct {
	interval time.Duration
	c        chan time.Time

	mu      sync.Mutex
	stopped bool
}

func (t *manualTicker) C() <-chan time.Time { return t.c }

func (t *manualTicker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
}

func (t *manualTicker) isStopped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}

func newManualTickClock() *manualTickClock {
	return &manualTickClock{FakeClock: clocktesting.NewFakeClock(time.Now())}
}

func (c *manualTickClock) NewTicker(d time.Duration) clock.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTicker{interval: d, c: make(chan time.Time)}
	c.tickers = append(c.tickers, t)
	return t
}

func (c *manualTickClock) ticker(t testing.TB) *manualTicker {
	t.Helper()
	var tk *manualTicker
	waitFor(t, "ticker", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.tickers) == 0 {
			return false
		}
		tk = c.tickers[len(c.tickers)-1]
		return true
	})
	return tk
}

func (c *manualTickClock) numTickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

// tick delivers one tick, failing the test if nobody receives it.
func (t *manualTicker) tick(tb testing.TB) {
	tb.Helper()
	select {
	case t.c <- time.Now():
	case <-time.After(10 * time.Second):
		tb.Fatal("tick not received: Drain is not polling")
	}
}

// tickUntilReturn ticks until Drain returns, and returns its result. When
// a tick is received, Drain's check for it has not necessarily run yet, so
// Drain may return on an earlier tick as well as on this one.
func (t *manualTicker) tickUntilReturn(tb testing.TB, result <-chan error) error {
	tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-result:
			return err
		case t.c <- time.Now():
		case <-timeout:
			tb.Fatal("Drain did not return")
		}
	}
}

// blockingHandler blocks every request until release is closed.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockingHandler() *blockingHandler {
	return &blockingHandler{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *blockingHandler) ServeHTTP(http.ResponseWriter, *http.Request) {
	h.entered <- struct{}{}
	<-h.release
}

// serveAsync runs one request through h; the channel closes when it returns.
func serveAsync(h http.Handler) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	return done
}

func drainAsync(ctx context.Context, tr *HijackTracker) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- tr.Drain(ctx) }()
	return ch
}

func TestHijackTrackerCounts(t *testing.T) {
	const n = 5
	tr := &HijackTracker{}
	bh := newBlockingHandler()
	h := tr.Handler(bh)
	if got := tr.InFlight(); got != 0 {
		t.Fatalf("InFlight() = %d before any request", got)
	}
	var dones []<-chan struct{}
	for range n {
		dones = append(dones, serveAsync(h))
	}
	for range n {
		<-bh.entered
	}
	if got := tr.InFlight(); got != n {
		t.Errorf("InFlight() = %d with %d requests blocked, want %d", got, n, n)
	}
	close(bh.release)
	for _, d := range dones {
		<-d
	}
	if got := tr.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d after all requests returned, want 0", got)
	}
}

func TestHijackTrackerPanic(t *testing.T) {
	tr := &HijackTracker{}
	h := tr.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		if got := tr.InFlight(); got != 1 {
			t.Errorf("InFlight() inside handler = %d, want 1", got)
		}
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's panic to propagate", r)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	if got := tr.InFlight(); got != 0 {
		t.Errorf("InFlight() after panic = %d, want 0", got)
	}
}

func TestHijackTrackerDrainPolls(t *testing.T) {
	tests := []struct {
		name         string
		pollInterval time.Duration
		wantInterval time.Duration
	}{
		{name: "default", pollInterval: 0, wantInterval: time.Second},
		{name: "negative means default", pollInterval: -time.Second, wantInterval: time.Second},
		{name: "configured", pollInterval: 250 * time.Millisecond, wantInterval: 250 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mc := newManualTickClock()
			tr := &HijackTracker{PollInterval: tc.pollInterval, Clock: mc}
			bh := newBlockingHandler()
			reqDone := serveAsync(tr.Handler(bh))
			<-bh.entered

			result := drainAsync(context.Background(), tr)
			tk := mc.ticker(t)
			if tk.interval != tc.wantInterval {
				t.Errorf("poll interval = %v, want %v", tk.interval, tc.wantInterval)
			}
			// Three ticks with a request in flight: each is only received
			// if Drain kept polling after the previous one.
			tk.tick(t)
			tk.tick(t)
			tk.tick(t)

			close(bh.release)
			<-reqDone
			if err := tk.tickUntilReturn(t, result); err != nil {
				t.Errorf("Drain() = %v, want nil", err)
			}
			if !tk.isStopped() {
				t.Error("ticker not stopped when Drain returned")
			}
		})
	}
}

func TestHijackTrackerDrainContext(t *testing.T) {
	tests := []struct {
		name     string
		inFlight bool
		ctx      func() (context.Context, context.CancelFunc)
		cancel   bool // cancel the context while Drain polls
		want     error
		wantTick bool // Drain must have created a ticker
	}{{
		name:     "nothing in flight returns at once, even with a done ctx",
		ctx:      cancelled,
		want:     nil,
		wantTick: false,
	}, {
		name:     "cancelled while waiting",
		inFlight: true,
		ctx:      func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		cancel:   true,
		want:     context.Canceled,
		wantTick: true,
	}, {
		name:     "already cancelled",
		inFlight: true,
		ctx:      cancelled,
		want:     context.Canceled,
		wantTick: true,
	}, {
		name:     "deadline passed",
		inFlight: true,
		ctx: func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		},
		want:     context.DeadlineExceeded,
		wantTick: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mc := newManualTickClock()
			tr := &HijackTracker{Clock: mc}
			bh := newBlockingHandler()
			var reqDone <-chan struct{}
			if tc.inFlight {
				reqDone = serveAsync(tr.Handler(bh))
				<-bh.entered
			}
			ctx, cancel := tc.ctx()
			defer cancel()

			result := drainAsync(ctx, tr)
			if tc.cancel {
				tk := mc.ticker(t)
				tk.tick(t) // polling, not returning
				cancel()
			}
			select {
			case err := <-result:
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("Drain() = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Drain did not return")
			}
			if got := mc.numTickers() > 0; got != tc.wantTick {
				t.Errorf("ticker created = %v, want %v", got, tc.wantTick)
			}
			if tc.inFlight {
				close(bh.release)
				<-reqDone
			}
		})
	}
}

func cancelled() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}

func TestHijackTrackerDrainFakeClock(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Now())
	tr := &HijackTracker{Clock: fc} // default 1s interval
	bh := newBlockingHandler()
	reqDone := serveAsync(tr.Handler(bh))
	<-bh.entered

	result := drainAsync(context.Background(), tr)
	waitFor(t, "poll ticker", fc.HasWaiters)
	fc.Step(time.Second)
	fc.Step(time.Second)
	select {
	case err := <-result:
		t.Fatalf("Drain returned %v with a request in flight", err)
	default:
	}

	close(bh.release)
	<-reqDone
	// A tick from the steps above may still be buffered in the fake
	// ticker, so Drain may return on it; if not, the next poll does it.
	fc.Step(time.Second)
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Drain() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return at the next poll")
	}
}

// TestHijackTrackerAfterShutdown is the reason the tracker exists:
// http.Server.Shutdown returns while a hijacked connection's handler is
// still running; Drain waits for it.
func TestHijackTrackerAfterShutdown(t *testing.T) {
	mc := newManualTickClock()
	tr := &HijackTracker{Clock: mc}
	hijacked := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = bufrw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
		_ = bufrw.Flush()
		close(hijacked)
		<-release
	})))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	<-hijacked

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := tr.InFlight(); got != 1 {
		t.Fatalf("InFlight() after Shutdown = %d, want 1 (the hijacked request)", got)
	}

	result := drainAsync(context.Background(), tr)
	tk := mc.ticker(t)
	tk.tick(t)
	tk.tick(t)
	tk.tick(t)
	close(release)
	waitFor(t, "hijacked handler to return", func() bool { return tr.InFlight() == 0 })
	if err := tk.tickUntilReturn(t, result); err != nil {
		t.Errorf("Drain() = %v, want nil", err)
	}
}

func BenchmarkHijackTracker(b *testing.B) {
	tr := &HijackTracker{}
	h := tr.Handler(nopHandler{})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(w, r)
	}
}
