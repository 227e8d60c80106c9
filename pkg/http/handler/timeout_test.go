package handler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// Identifiers in this file start with "tmo" so that they do not collide with
// the other test files of the package.

const (
	tmoMsg         = "request timeout"
	tmoContentType = "text/plain; charset=utf-8"
)

// tmoClock is a FakeClock whose AfterFunc behaves like the real one: the
// callback runs on its own goroutine (FakeClock runs it synchronously under
// its lock, which deadlocks a callback that reads the clock) and the timer can
// be Reset after it fired (FakeClock's cannot: its channel is full). step
// advances the clock and waits for the callbacks it fired to return, so tests
// are deterministic without sleeping.
type tmoClock struct {
	*clocktesting.FakeClock
	wg sync.WaitGroup
}

var _ clock.WithDelayedExecution = (*tmoClock)(nil)

func newTmoClock() *tmoClock {
	return &tmoClock{FakeClock: clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

func (c *tmoClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &tmoTimer{c: c, f: f}
	t.t = c.FakeClock.AfterFunc(d, t.fire)
	return t
}

func (c *tmoClock) step(d time.Duration) {
	c.Step(d)
	c.wg.Wait()
}

type tmoTimer struct {
	c  *tmoClock
	f  func()
	mu sync.Mutex
	t  clock.Timer
}

// fire runs under the FakeClock's lock, inside Step.
func (t *tmoTimer) fire() {
	t.c.wg.Add(1)
	go func() {
		defer t.c.wg.Done()
		t.f()
	}()
}

func (t *tmoTimer) C() <-chan time.Time { return nil }

func (t *tmoTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.t.Stop()
}

func (t *tmoTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	active := t.t.Stop()
	t.t = t.c.FakeClock.AfterFunc(d, t.fire)
	return active
}

func tmoFixed(timeout, responseStart, idle time.Duration) TimeoutFunc {
	return func(*http.Request) (time.Duration, time.Duration, time.Duration) {
		return timeout, responseStart, idle
	}
}

func tmoLogger() (*zap.SugaredLogger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core).Sugar(), logs
}

// tmoCheckLog asserts that exactly one WARN entry with message want was
// logged, or nothing at all when want is "".
func tmoCheckLog(t *testing.T, logs *observer.ObservedLogs, want string) {
	t.Helper()
	entries := logs.AllUntimed()
	if want == "" {
		if len(entries) != 0 {
			t.Errorf("log entries = %v, want none", entries)
		}
		return
	}
	if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel || entries[0].Message != want {
		t.Errorf("log entries = %v, want one WARN %q", entries, want)
	}
}

// tmoWait waits for ch to be closed or to deliver; the 10s bound only keeps a
// broken handler from hanging the test binary.
func tmoWait[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// tmoCheck504Header asserts the header set of a 504 written by the handler.
func tmoCheck504Header(t *testing.T, h http.Header) {
	t.Helper()
	if got := h.Get("Content-Type"); got != tmoContentType {
		t.Errorf("Content-Type = %q, want %q", got, tmoContentType)
	}
	if got := h.Get("Content-Length"); got != "15" {
		t.Errorf("Content-Length = %q, want 15", got)
	}
	if _, ok := h["X-Content-Type-Options"]; ok {
		t.Errorf("unexpected X-Content-Type-Options: %v", h)
	}
}

// tmoSyncBuffer is a goroutine-safe buffer for a server's ErrorLog.
type tmoSyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *tmoSyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *tmoSyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tmoServer starts an httptest server whose error log is captured.
func tmoServer(t *testing.T, h http.Handler, http2 bool) (*httptest.Server, *tmoSyncBuffer) {
	t.Helper()
	errLog := &tmoSyncBuffer{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(errLog, "", 0)
	if http2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		// Cancels handlers still blocked on their request context, so that a
		// failing test fails instead of hanging in Close.
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, errLog
}

// tmoReq builds a client request.
func tmoReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// tmoDo sends req on a goroutine; the result arrives on the channel.
type tmoResult struct {
	resp *http.Response
	body string
	err  error
}

func tmoDo(c *http.Client, req *http.Request) <-chan tmoResult {
	ch := make(chan tmoResult, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			ch <- tmoResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- tmoResult{resp: resp, body: string(b), err: err}
	}()
	return ch
}

// TestTimeoutHandlerPassThrough: when nothing times out the inner response
// reaches the client unchanged, the inner context is cancelled once the
// handler returns, and the timer is stopped.
func TestTimeoutHandlerPassThrough(t *testing.T) {
	tests := []struct {
		name        string
		outer       http.Header // set on the real writer before the handler
		inner       func(w http.ResponseWriter)
		wantStatus  int
		wantHeader  http.Header
		wantBody    string
		wantFlushed bool
	}{{
		name: "status headers body",
		inner: func(w http.ResponseWriter) {
			w.Header().Set("X-Foo", "bar")
			w.Header().Add("X-Multi", "1")
			w.Header().Add("X-Multi", "2")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("hello "))
			_, _ = w.Write([]byte("world"))
		},
		wantStatus: http.StatusCreated,
		wantHeader: http.Header{"X-Foo": {"bar"}, "X-Multi": {"1", "2"}},
		wantBody:   "hello world",
	}, {
		name: "implicit 200 on write",
		inner: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		},
		wantStatus: http.StatusOK,
		wantHeader: http.Header{"Content-Type": {"application/json"}},
		wantBody:   "{}",
	}, {
		name: "headers without a write",
		inner: func(w http.ResponseWriter) {
			w.Header().Set("X-Only", "header")
		},
		wantStatus: http.StatusOK,
		wantHeader: http.Header{"X-Only": {"header"}},
	}, {
		name: "flush sends the headers",
		inner: func(w http.ResponseWriter) {
			w.Header().Set("X-Flushed", "yes")
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("after"))
		},
		wantStatus:  http.StatusOK,
		wantHeader:  http.Header{"X-Flushed": {"yes"}},
		wantBody:    "after",
		wantFlushed: true,
	}, {
		name:  "outer headers are visible and deletable",
		outer: http.Header{"X-Outer": {"o"}, "X-Gone": {"g"}},
		inner: func(w http.ResponseWriter) {
			if w.Header().Get("X-Outer") != "o" {
				w.WriteHeader(http.StatusTeapot)
				return
			}
			w.Header().Del("X-Gone")
			w.Header().Set("X-Inner", "i")
			w.WriteHeader(http.StatusAccepted)
		},
		wantStatus: http.StatusAccepted,
		wantHeader: http.Header{"X-Outer": {"o"}, "X-Inner": {"i"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			logger, logs := tmoLogger()
			var innerCtx context.Context
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				innerCtx = r.Context()
				if !clk.HasWaiters() {
					t.Error("no timer armed while the inner handler runs")
				}
				tc.inner(w)
				if innerCtx.Err() != nil {
					t.Errorf("inner context done while running: %v", innerCtx.Err())
				}
			}), tmoMsg, tmoFixed(time.Minute, 10*time.Second, 10*time.Second), logger, clk)

			rec := httptest.NewRecorder()
			for k, v := range tc.outer {
				rec.Header()[k] = v
			}
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header(); !reflect.DeepEqual(got, tc.wantHeader) {
				t.Errorf("header = %v, want %v", got, tc.wantHeader)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			if rec.Flushed != tc.wantFlushed {
				t.Errorf("flushed = %v, want %v", rec.Flushed, tc.wantFlushed)
			}
			if !errors.Is(innerCtx.Err(), context.Canceled) {
				t.Errorf("inner context after return: %v, want context.Canceled", innerCtx.Err())
			}
			if clk.HasWaiters() {
				t.Error("timer still armed after the handler returned")
			}
			tmoCheckLog(t, logs, "")
		})
	}
}

// TestTimeoutHandlerTrailers checks trailers set after the body (declared and
// with http.TrailerPrefix) reach a real client, over HTTP/1.1 and HTTP/2.
func TestTimeoutHandlerTrailers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Trailer", "X-Declared")
				w.Header().Set("X-Foo", "bar")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("body"))
				w.(http.Flusher).Flush()
				w.Header().Set("X-Declared", "d")
				w.Header().Set(http.TrailerPrefix+"X-Late", "l")
			}), tmoMsg, tmoFixed(time.Minute, 0, 0), nil, newTmoClock())
			srv, _ := tmoServer(t, h, tc.http2)

			res := tmoWait(t, tmoDo(srv.Client(), tmoReq(t, http.MethodGet, srv.URL, nil)), "response")
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.body != "body" || res.resp.Header.Get("X-Foo") != "bar" {
				t.Errorf("got body %q header %v", res.body, res.resp.Header)
			}
			want := http.Header{"X-Declared": {"d"}, "X-Late": {"l"}}
			if !reflect.DeepEqual(res.resp.Trailer, want) {
				t.Errorf("trailer = %v, want %v", res.resp.Trailer, want)
			}
		})
	}
}

// TestTimeoutHandlerTimeouts drives the three timeouts with a fake clock.
// Each step either advances the clock or makes the inner handler write; after
// each step the test checks whether the request has timed out (the inner
// context is cancelled exactly then).
func TestTimeoutHandlerTimeouts(t *testing.T) {
	type step struct {
		advance  time.Duration // the test advances the clock
		write    string        // else the inner handler writes this ...
		header   int           // ... or calls WriteHeader(header)
		writeErr error         // expected error of the write
		timedOut bool          // the request has timed out after this step
	}
	const s = time.Second
	tests := []struct {
		name                         string
		timeout, responseStart, idle time.Duration
		steps                        []step
		wantStatus                   int
		wantBody                     string
		wantLog                      string // "" = no timeout
	}{{
		name:    "overall before any write",
		timeout: 3 * s,
		steps: []step{
			{advance: 3*s - time.Millisecond},
			{advance: time.Millisecond, timedOut: true},
		},
		wantStatus: http.StatusGatewayTimeout,
		wantBody:   tmoMsg,
		wantLog:    "Request timeout: 3s",
	}, {
		name:    "overall after a partial write appends",
		timeout: 3 * s,
		steps: []step{
			{header: http.StatusOK},
			{write: "partial"},
			{advance: 3 * s, timedOut: true},
			{write: "more", writeErr: http.ErrHandlerTimeout, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   "partial" + tmoMsg,
		wantLog:    "Request timeout: 3s",
	}, {
		name:    "overall after WriteHeader only",
		timeout: 3 * s,
		steps: []step{
			{header: http.StatusAccepted},
			{advance: 3 * s, timedOut: true},
		},
		wantStatus: http.StatusAccepted,
		wantBody:   tmoMsg,
		wantLog:    "Request timeout: 3s",
	}, {
		name:          "response start before the first byte",
		timeout:       10 * s,
		responseStart: s,
		steps: []step{
			{advance: 999 * time.Millisecond},
			{advance: time.Millisecond, timedOut: true},
		},
		wantStatus: http.StatusGatewayTimeout,
		wantBody:   tmoMsg,
		wantLog:    "Response start timeout: 1s",
	}, {
		name:          "response start ignored after the first byte",
		timeout:       10 * s,
		responseStart: s,
		steps: []step{
			{write: "x"},
			{advance: s},
			{advance: 8 * s},
			{advance: s, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   "x" + tmoMsg,
		wantLog:    "Request timeout: 10s",
	}, {
		name:          "response start ignored after WriteHeader",
		timeout:       10 * s,
		responseStart: s,
		steps: []step{
			{advance: s / 2},
			{header: http.StatusCreated},
			{advance: s},
			{advance: 9 * s, timedOut: true},
		},
		wantStatus: http.StatusCreated,
		wantBody:   tmoMsg,
		wantLog:    "Request timeout: 10s",
	}, {
		name:    "idle with nothing written",
		timeout: 10 * s,
		idle:    s,
		steps: []step{
			{advance: 999 * time.Millisecond},
			{advance: time.Millisecond, timedOut: true},
		},
		wantStatus: http.StatusGatewayTimeout,
		wantBody:   tmoMsg,
		wantLog:    "Idle timeout: 1s",
	}, {
		name:    "idle kept alive by writes, then a gap",
		timeout: 10 * s,
		idle:    s,
		steps: []step{
			{write: "a"},
			{advance: s / 2},
			{write: "b"},
			{advance: s / 2},
			{write: "c"},
			{advance: s / 2},
			{write: "d"},
			{advance: s / 2},
			{advance: 499 * time.Millisecond},
			{advance: time.Millisecond, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   "abcd" + tmoMsg,
		wantLog:    "Idle timeout: 1s",
	}, {
		name:    "idle counts WriteHeader as a write",
		timeout: 10 * s,
		idle:    s,
		steps: []step{
			{advance: 600 * time.Millisecond},
			{header: http.StatusOK},
			{advance: 600 * time.Millisecond},
			{advance: 399 * time.Millisecond},
			{advance: time.Millisecond, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   tmoMsg,
		wantLog:    "Idle timeout: 1s",
	}, {
		name:    "one clock jump past several re-arms",
		timeout: 10 * s,
		idle:    s,
		steps: []step{
			{write: "a"},
			{advance: s / 2},
			{write: "b"},
			{advance: 5 * s, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   "ab" + tmoMsg,
		wantLog:    "Idle timeout: 1s",
	}, {
		name:          "idle after response start disarmed",
		timeout:       10 * s,
		responseStart: s,
		idle:          2 * s,
		steps: []step{
			{write: "x"},
			{advance: s},
			{advance: s, timedOut: true},
		},
		wantStatus: http.StatusOK,
		wantBody:   "x" + tmoMsg,
		wantLog:    "Idle timeout: 2s",
	}, {
		name:    "overall takes precedence when due with idle",
		timeout: 2 * s,
		idle:    2 * s,
		steps: []step{
			{advance: 2 * s, timedOut: true},
		},
		wantStatus: http.StatusGatewayTimeout,
		wantBody:   tmoMsg,
		wantLog:    "Request timeout: 2s",
	}, {
		name:          "overall before response start",
		timeout:       s,
		responseStart: 5 * s,
		steps: []step{
			{advance: s, timedOut: true},
		},
		wantStatus: http.StatusGatewayTimeout,
		wantBody:   tmoMsg,
		wantLog:    "Request timeout: 1s",
	}, {
		name:          "nothing fires",
		timeout:       10 * s,
		responseStart: s,
		idle:          s,
		steps: []step{
			{advance: s / 2},
			{header: http.StatusOK},
			{advance: s / 2},
			{write: "ok"},
			{advance: s / 2},
		},
		wantStatus: http.StatusOK,
		wantBody:   "ok",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			logger, logs := tmoLogger()
			type cmd struct {
				write  string
				header int
			}
			cmds := make(chan cmd)
			acks := make(chan error)
			ctxs := make(chan context.Context, 1)
			var lateErr error
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctxs <- r.Context()
				for c := range cmds {
					if c.header != 0 {
						w.WriteHeader(c.header)
						acks <- nil
						continue
					}
					_, err := w.Write([]byte(c.write))
					acks <- err
				}
				if tc.wantLog == "" {
					return
				}
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
					t.Error("inner context not cancelled by the timeout")
					return
				}
				_, lateErr = w.Write([]byte("late"))
				w.WriteHeader(http.StatusInternalServerError) // a no-op
			})
			h := NewTimeoutHandlerWithClock(inner, tmoMsg, tmoFixed(tc.timeout, tc.responseStart, tc.idle), logger, clk)
			rec := httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			ctx := tmoWait(t, ctxs, "the inner handler")

			for i, st := range tc.steps {
				if st.advance > 0 {
					clk.step(st.advance)
				} else {
					cmds <- cmd{write: st.write, header: st.header}
					if err := <-acks; !errors.Is(err, st.writeErr) {
						t.Fatalf("step %d: write error = %v, want %v", i, err, st.writeErr)
					}
				}
				if got := ctx.Err() != nil; got != st.timedOut {
					t.Fatalf("step %d: timed out = %v, want %v", i, got, st.timedOut)
				}
			}
			close(cmds)
			tmoWait(t, done, "ServeHTTP to return")

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			if tc.wantStatus == http.StatusGatewayTimeout {
				tmoCheck504Header(t, rec.Header())
			} else if cl := rec.Header().Get("Content-Length"); cl != "" {
				t.Errorf("Content-Length %q set on an appended response", cl)
			}
			if tc.wantLog != "" && !errors.Is(lateErr, http.ErrHandlerTimeout) {
				t.Errorf("write after timeout: %v, want http.ErrHandlerTimeout", lateErr)
			}
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Errorf("inner context = %v, want context.Canceled", ctx.Err())
			}
			if clk.HasWaiters() {
				t.Error("timer still armed after the handler returned")
			}
			tmoCheckLog(t, logs, tc.wantLog)
		})
	}
}

// TestTimeoutHandlerZeroTimeout: an overall timeout <= 0 times out at once,
// without running the inner handler.
func TestTimeoutHandlerZeroTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, -time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			logger, logs := tmoLogger()
			called := false
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				called = true
			}), tmoMsg, tmoFixed(timeout, time.Second, time.Second), logger, newTmoClock())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if called {
				t.Error("inner handler ran")
			}
			if rec.Code != http.StatusGatewayTimeout || rec.Body.String() != tmoMsg {
				t.Errorf("got %d %q, want 504 %q", rec.Code, rec.Body.String(), tmoMsg)
			}
			tmoCheck504Header(t, rec.Header())
			tmoCheckLog(t, logs, "Request timeout: "+timeout.String())
		})
	}
}

// TestTimeoutHandlerWire504 compares the 504 on the wire with what net/http
// sends for a handler that writes the same status and body, header for
// header (Date aside).
func TestTimeoutHandlerWire504(t *testing.T) {
	reference := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusGatewayTimeout)
		_, _ = io.WriteString(w, tmoMsg)
	})
	refs := map[bool]*httptest.Server{}
	refs[false], _ = tmoServer(t, reference, false)
	refs[true], _ = tmoServer(t, reference, true)

	tests := []struct {
		name    string
		method  string
		timeout time.Duration // 0: at once; else the clock is stepped
		http2   bool
	}{
		{"GET fired", http.MethodGet, 3 * time.Second, false},
		{"HEAD fired", http.MethodHead, 3 * time.Second, false},
		{"POST fired", http.MethodPost, 3 * time.Second, false},
		{"GET immediate", http.MethodGet, 0, false},
		{"HEAD immediate", http.MethodHead, 0, false},
		{"HTTP/2 GET fired", http.MethodGet, 3 * time.Second, true},
		{"HTTP/2 HEAD fired", http.MethodHead, 3 * time.Second, true},
		{"HTTP/2 GET immediate", http.MethodGet, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			entered := make(chan struct{}, 1)
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Unsent", "inner") // set, never written
				entered <- struct{}{}
				<-r.Context().Done()
			}), tmoMsg, tmoFixed(tc.timeout, 0, 0), nil, clk)
			srv, errLog := tmoServer(t, h, tc.http2)
			ref := refs[tc.http2]

			want := tmoWait(t, tmoDo(ref.Client(), tmoReq(t, tc.method, ref.URL, strings.NewReader("x"))), "reference response")
			got := tmoDo(srv.Client(), tmoReq(t, tc.method, srv.URL, strings.NewReader("x")))
			if tc.timeout > 0 {
				tmoWait(t, entered, "the inner handler")
				clk.step(tc.timeout)
			}
			res := tmoWait(t, got, "response")
			if res.err != nil || want.err != nil {
				t.Fatalf("errors: got %v, reference %v", res.err, want.err)
			}
			if res.resp.Proto != want.resp.Proto {
				t.Errorf("proto = %s, reference %s", res.resp.Proto, want.resp.Proto)
			}
			if res.resp.StatusCode != http.StatusGatewayTimeout || res.body != want.body {
				t.Errorf("got %d %q, want 504 %q", res.resp.StatusCode, res.body, want.body)
			}
			if res.resp.ContentLength != want.resp.ContentLength || !reflect.DeepEqual(res.resp.TransferEncoding, want.resp.TransferEncoding) {
				t.Errorf("framing: Content-Length %d TE %v, want %d %v", res.resp.ContentLength, res.resp.TransferEncoding, want.resp.ContentLength, want.resp.TransferEncoding)
			}
			gotH, wantH := res.resp.Header.Clone(), want.resp.Header.Clone()
			gotH.Del("Date")
			wantH.Del("Date")
			if !reflect.DeepEqual(gotH, wantH) {
				t.Errorf("header = %v, want %v", gotH, wantH)
			}
			if tc.method != http.MethodHead {
				tmoCheck504Header(t, res.resp.Header)
			}
			if s := errLog.String(); s != "" {
				t.Errorf("server error log: %s", s)
			}
		})
	}
}

// TestTimeoutHandlerStreamingWire: an overall timeout during a streamed
// response appends the message and ends the response cleanly; the client
// reads a complete body without error.
func TestTimeoutHandlerStreamingWire(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1 chunked", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			logger, logs := tmoLogger()
			lateErr := make(chan error, 1)
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for i := range 3 {
					fmt.Fprintf(w, "chunk %d\n", i)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done()
				_, err := w.Write([]byte("late"))
				lateErr <- err
			}), tmoMsg, tmoFixed(3*time.Second, 0, 0), logger, clk)
			srv, errLog := tmoServer(t, h, tc.http2)

			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var partial strings.Builder
			for range 3 { // everything streamed so far has arrived
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				partial.WriteString(line)
			}
			clk.step(3 * time.Second)
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("reading the rest of the body: %v", err)
			}
			if got, want := partial.String()+string(rest), "chunk 0\nchunk 1\nchunk 2\n"+tmoMsg; got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if !tc.http2 && !reflect.DeepEqual(resp.TransferEncoding, []string{"chunked"}) {
				t.Errorf("TransferEncoding = %v, want chunked", resp.TransferEncoding)
			}
			if tc.http2 && resp.ProtoMajor != 2 {
				t.Errorf("proto = %s, want HTTP/2", resp.Proto)
			}
			if err := tmoWait(t, lateErr, "late write"); !errors.Is(err, http.ErrHandlerTimeout) {
				t.Errorf("write after timeout: %v", err)
			}
			tmoCheckLog(t, logs, "Request timeout: 3s")
			if s := errLog.String(); s != "" {
				t.Errorf("server error log: %s", s)
			}
		})
	}
}

// TestTimeoutHandlerReverseProxyAbort puts a real httputil.ReverseProxy in
// front of a streaming backend. Our timeout makes the proxy's body copy fail
// and it panics with http.ErrAbortHandler; the handler swallows that panic, so
// the client reads "chunk 0…chunk 5\nrequest timeout" as a complete 200 body.
func TestTimeoutHandlerReverseProxyAbort(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 6 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer backend.Close()
	defer close(release)
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = tr
	proxy.ErrorLog = log.New(io.Discard, "", 0)

	panics := make(chan any, 1)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				panics <- p
				panic(p)
			}
		}()
		proxy.ServeHTTP(w, r)
	})
	clk := newTmoClock()
	logger, logs := tmoLogger()
	front, errLog := tmoServer(t, NewTimeoutHandlerWithClock(inner, tmoMsg, tmoFixed(10*time.Second, 0, 0), logger, clk), false)

	resp, err := front.Client().Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var body strings.Builder
	for range 6 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		body.WriteString(line)
	}
	clk.step(10 * time.Second)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the rest of the body: %v", err)
	}
	body.Write(rest)
	if want := "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n" + tmoMsg; body.String() != want {
		t.Errorf("body = %q, want %q", body.String(), want)
	}
	if resp.StatusCode != http.StatusOK || !reflect.DeepEqual(resp.TransferEncoding, []string{"chunked"}) {
		t.Errorf("status %d TE %v, want 200 chunked", resp.StatusCode, resp.TransferEncoding)
	}
	if p := tmoWait(t, panics, "the proxy's panic"); p != http.ErrAbortHandler {
		t.Errorf("proxy panicked with %v, want http.ErrAbortHandler", p)
	}
	tmoCheckLog(t, logs, "Request timeout: 10s")
	if s := errLog.String(); s != "" {
		t.Errorf("server error log: %s", s)
	}
}

// TestTimeoutHandlerPanics: panics reach net/http, except ErrAbortHandler
// after a timeout.
func TestTimeoutHandlerPanics(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name         string
		afterTimeout bool
		value        any
		wantPanic    bool
	}{
		{"value before timeout", false, boom, true},
		{"string before timeout", false, "boom", true},
		{"ErrAbortHandler before timeout", false, http.ErrAbortHandler, true},
		{"ErrAbortHandler after timeout", true, http.ErrAbortHandler, false},
		{"value after timeout", true, boom, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			entered := make(chan struct{}, 1)
			var innerCtx context.Context
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				innerCtx = r.Context()
				entered <- struct{}{}
				if tc.afterTimeout {
					<-r.Context().Done()
				}
				panic(tc.value)
			}), tmoMsg, tmoFixed(time.Second, 0, 0), nil, clk)
			rec := httptest.NewRecorder()
			recovered := make(chan any, 1)
			go func() {
				defer func() { recovered <- recover() }()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			tmoWait(t, entered, "the inner handler")
			if tc.afterTimeout {
				clk.step(time.Second)
			}
			p := tmoWait(t, recovered, "ServeHTTP to return")
			if tc.wantPanic && p != tc.value {
				t.Errorf("recovered %v, want %v", p, tc.value)
			}
			if !tc.wantPanic && p != nil {
				t.Errorf("recovered %v, want no panic", p)
			}
			if tc.afterTimeout && (rec.Code != http.StatusGatewayTimeout || rec.Body.String() != tmoMsg) {
				t.Errorf("got %d %q, want the 504", rec.Code, rec.Body.String())
			}
			if !errors.Is(innerCtx.Err(), context.Canceled) {
				t.Errorf("inner context = %v, want context.Canceled", innerCtx.Err())
			}
			if clk.HasWaiters() {
				t.Error("timer still armed after the panic")
			}
		})
	}
}

// tmoCountingWriter records what reaches the underlying writer.
type tmoCountingWriter struct {
	h       http.Header
	code    int
	body    bytes.Buffer
	flushes int
}

func (w *tmoCountingWriter) Header() http.Header { return w.h }

func (w *tmoCountingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *tmoCountingWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *tmoCountingWriter) Flush() {
	w.WriteHeader(http.StatusOK)
	w.flushes++
}

// TestTimeoutHandlerWriterAfterTimeout: Flush passes through before the
// timeout and is suppressed after it, with WriteHeader, Write and Hijack.
func TestTimeoutHandlerWriterAfterTimeout(t *testing.T) {
	tests := []struct {
		name        string
		flushBefore bool
		wantCode    int
		wantBody    string
		wantFlushes int // the timeout flushes once itself
	}{
		{"flush before the timeout", true, http.StatusOK, tmoMsg, 2},
		{"nothing before the timeout", false, http.StatusGatewayTimeout, tmoMsg, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			entered := make(chan struct{}, 1)
			var errs []error
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.flushBefore {
					w.(http.Flusher).Flush()
				}
				entered <- struct{}{}
				<-r.Context().Done()
				w.(http.Flusher).Flush()
				w.WriteHeader(http.StatusInternalServerError)
				_, err := w.Write([]byte("late"))
				errs = append(errs, err, http.NewResponseController(w).Flush())
				_, _, err = http.NewResponseController(w).Hijack()
				errs = append(errs, err)
			}), tmoMsg, tmoFixed(time.Second, 0, 0), nil, clk)
			cw := &tmoCountingWriter{h: http.Header{}}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(cw, httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			tmoWait(t, entered, "the inner handler")
			clk.step(time.Second)
			tmoWait(t, done, "ServeHTTP to return")

			if cw.code != tc.wantCode || cw.body.String() != tc.wantBody || cw.flushes != tc.wantFlushes {
				t.Errorf("got %d %q %d flushes, want %d %q %d", cw.code, cw.body.String(), cw.flushes, tc.wantCode, tc.wantBody, tc.wantFlushes)
			}
			for i, err := range errs {
				if !errors.Is(err, http.ErrHandlerTimeout) {
					t.Errorf("call %d after timeout: %v, want http.ErrHandlerTimeout", i, err)
				}
			}
			if len(errs) != 3 {
				t.Errorf("got %d errors, want 3", len(errs))
			}
		})
	}
}

// TestTimeoutHandlerHijack: Hijack is delegated; afterwards the connection
// bypasses the handler, and a timeout only cancels the context (net/http
// would log a write on a hijacked connection).
func TestTimeoutHandlerHijack(t *testing.T) {
	clk := newTmoClock()
	logger, logs := tmoLogger()
	innerDone := make(chan error, 1)
	h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			innerDone <- err
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		_ = brw.Flush()
		<-r.Context().Done()
		innerDone <- r.Context().Err()
	}), tmoMsg, tmoFixed(5*time.Second, 0, time.Second), logger, clk)
	srv, errLog := tmoServer(t, h, false)

	res := tmoWait(t, tmoDo(srv.Client(), tmoReq(t, http.MethodGet, srv.URL, nil)), "response")
	if res.err != nil || res.body != "hi" {
		t.Fatalf("got %q, %v; want hi", res.body, res.err)
	}
	clk.step(time.Second) // idle: nothing went through the writer
	if err := tmoWait(t, innerDone, "the inner handler"); !errors.Is(err, context.Canceled) {
		t.Errorf("inner context = %v, want context.Canceled", err)
	}
	tmoCheckLog(t, logs, "Idle timeout: 1s")
	if s := errLog.String(); s != "" {
		t.Errorf("server error log: %s", s)
	}
}

func TestTimeoutHandlerHijackNotSupported(t *testing.T) {
	errc := make(chan error, 1)
	h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _, err := w.(http.Hijacker).Hijack()
		errc <- err
	}), tmoMsg, tmoFixed(time.Second, 0, 0), nil, newTmoClock())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if err := <-errc; !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack on a recorder: %v, want http.ErrNotSupported", err)
	}
}

// TestTimeoutHandlerUpgradeViaReverseProxy: an upgraded connection through
// httputil.ReverseProxy works through the handler and is capped by the
// overall timeout (the proxy closes both sides when the context ends).
func TestTimeoutHandlerUpgradeViaReverseProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = tr
	proxy.ErrorLog = log.New(io.Discard, "", 0)

	clk := newTmoClock()
	logger, logs := tmoLogger()
	front, errLog := tmoServer(t, NewTimeoutHandlerWithClock(proxy, tmoMsg, tmoFixed(10*time.Second, 0, 0), logger, clk), false)

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // only against hanging
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}

	clk.step(10 * time.Second)
	if n, err := br.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("read after the timeout = %d, %v; want io.EOF", n, err)
	}
	tmoCheckLog(t, logs, "Request timeout: 10s")
	if s := errLog.String(); s != "" {
		t.Errorf("server error log: %s", s)
	}
}

// TestTimeoutHandlerResponseController: http.ResponseController reaches the
// real writer through Unwrap.
func TestTimeoutHandlerResponseController(t *testing.T) {
	tests := []struct {
		name string
		call func(rc *http.ResponseController) error
	}{
		{"SetWriteDeadline", func(rc *http.ResponseController) error { return rc.SetWriteDeadline(time.Time{}) }},
		{"SetReadDeadline", func(rc *http.ResponseController) error { return rc.SetReadDeadline(time.Time{}) }},
		{"EnableFullDuplex", func(rc *http.ResponseController) error { return rc.EnableFullDuplex() }},
		{"Flush", func(rc *http.ResponseController) error { return rc.Flush() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errc := make(chan error, 1)
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				errc <- tc.call(http.NewResponseController(w))
				_, _ = io.WriteString(w, "ok")
			}), tmoMsg, tmoFixed(time.Minute, 0, 0), nil, newTmoClock())
			srv, _ := tmoServer(t, h, false)
			res := tmoWait(t, tmoDo(srv.Client(), tmoReq(t, http.MethodGet, srv.URL, nil)), "response")
			if res.err != nil || res.body != "ok" {
				t.Fatalf("got %q, %v", res.body, res.err)
			}
			if err := <-errc; err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		})
	}

	rec := httptest.NewRecorder()
	NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok || u.Unwrap() != rec {
			t.Error("Unwrap does not return the underlying writer")
		}
	}), tmoMsg, tmoFixed(time.Minute, 0, 0), nil, newTmoClock()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
}

// TestTimeoutHandlerInformational: 1xx responses (except 101) pass through
// with their headers and do not start the response.
func TestTimeoutHandlerInformational(t *testing.T) {
	const link = "</style.css>; rel=preload"
	tests := []struct {
		name       string
		final      bool // the inner handler answers 200 after the 103
		wantStatus int
		wantBody   string
		wantLog    string
	}{
		{"103 then 200", true, http.StatusOK, "ok", ""},
		{"response start timeout after 103", false, http.StatusGatewayTimeout, tmoMsg, "Response start timeout: 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			logger, logs := tmoLogger()
			entered := make(chan struct{}, 1)
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", link)
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				if tc.final {
					w.Header().Set("X-Final", "1")
					_, _ = io.WriteString(w, "ok")
					return
				}
				entered <- struct{}{}
				<-r.Context().Done()
			}), tmoMsg, tmoFixed(time.Minute, time.Second, 0), logger, clk)
			srv, _ := tmoServer(t, h, false)

			var mu sync.Mutex
			var got1xx []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				mu.Lock()
				defer mu.Unlock()
				got1xx = append(got1xx, fmt.Sprintf("%d %s", code, h.Get("Link")))
				return nil
			}}
			req := tmoReq(t, http.MethodGet, srv.URL, nil).WithContext(httptrace.WithClientTrace(context.Background(), trace))
			resc := tmoDo(srv.Client(), req)
			if !tc.final {
				tmoWait(t, entered, "the inner handler")
				clk.step(time.Second)
			}
			res := tmoWait(t, resc, "response")
			if res.err != nil {
				t.Fatal(res.err)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"103 " + link}; !reflect.DeepEqual(got1xx, want) {
				t.Errorf("1xx = %q, want %q", got1xx, want)
			}
			if res.resp.StatusCode != tc.wantStatus || res.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", res.resp.StatusCode, res.body, tc.wantStatus, tc.wantBody)
			}
			if l := res.resp.Header.Get("Link"); l != "" {
				t.Errorf("Link leaked into the final response: %q", l)
			}
			if tc.final && res.resp.Header.Get("X-Final") != "1" {
				t.Errorf("final header missing: %v", res.resp.Header)
			}
			tmoCheckLog(t, logs, tc.wantLog)
		})
	}
}

// TestTimeoutHandlerConcurrent runs many requests with the real clock and
// timeouts that fire at arbitrary points (run it with -race). Whatever the
// interleaving, each response is one of the well-formed outcomes, a response
// carries the message exactly when a timeout was logged, and pooled writers
// never mix requests up.
func TestTimeoutHandlerConcurrent(t *testing.T) {
	logger, logs := tmoLogger()
	var n atomic.Int64
	h := NewTimeoutHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Id")
		w.Header().Set("X-Id", id)
		_, _ = io.WriteString(w, "a")
		// Give the (1ns) timers of this and other requests a chance to fire
		// mid-request. Not a wait for time to pass: nothing asserts on it.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Microsecond):
		}
		_, _ = io.WriteString(w, "b")
	}), tmoMsg, func(*http.Request) (time.Duration, time.Duration, time.Duration) {
		switch n.Add(1) % 4 {
		case 0:
			return time.Nanosecond, 0, 0
		case 1:
			return time.Hour, time.Nanosecond, 0
		case 2:
			return time.Hour, 0, time.Nanosecond
		default:
			return time.Hour, 0, 0
		}
	}, logger)

	const workers, perWorker = 8, 100
	var timedOut atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprint(w, "-", i)
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("X-Id", id)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				body := rec.Body.String()
				switch {
				case rec.Code == http.StatusGatewayTimeout && body == tmoMsg:
					timedOut.Add(1)
				case rec.Code == http.StatusOK && (body == "a"+tmoMsg || body == "ab"+tmoMsg):
					timedOut.Add(1)
					if rec.Header().Get("X-Id") != id {
						t.Errorf("X-Id = %q, want %q", rec.Header().Get("X-Id"), id)
					}
				case rec.Code == http.StatusOK && body == "ab":
					if rec.Header().Get("X-Id") != id {
						t.Errorf("X-Id = %q, want %q", rec.Header().Get("X-Id"), id)
					}
				default:
					t.Errorf("unexpected response %d %q", rec.Code, body)
				}
			}
		})
	}
	wg.Wait()
	// A timeout is logged right after its message is written, possibly after
	// ServeHTTP returned: wait for the log to catch up.
	deadline := time.Now().Add(10 * time.Second)
	for int64(logs.Len()) != timedOut.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if int64(logs.Len()) != timedOut.Load() {
		t.Errorf("%d timeouts logged, %d responses carry the message", logs.Len(), timedOut.Load())
	}
	t.Logf("%d of %d requests timed out", timedOut.Load(), workers*perWorker)
}

type tmoBenchWriter struct{ h http.Header }

func (w *tmoBenchWriter) Header() http.Header         { return w.h }
func (w *tmoBenchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *tmoBenchWriter) WriteHeader(int)             {}

// BenchmarkTimeoutHandler measures the path where nothing times out, with a
// trivial inner handler writing 2 bytes. The stdlib's goroutine-per-request
// http.TimeoutHandler runs in the same benchmark for comparison.
func BenchmarkTimeoutHandler(b *testing.B) {
	body := []byte("ok")
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	nop := zap.NewNop().Sugar()
	cases := []struct {
		name string
		h    http.Handler
	}{
		{"overall", NewTimeoutHandler(inner, tmoMsg, tmoFixed(time.Minute, 0, 0), nop)},
		{"overall+start+idle", NewTimeoutHandler(inner, tmoMsg, tmoFixed(time.Minute, 10*time.Second, 10*time.Second), nop)},
		{"stdlib-http.TimeoutHandler", http.TimeoutHandler(inner, time.Minute, tmoMsg)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := &tmoBenchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
		b.Run(c.name+"/cancelable-parent", func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			w := &tmoBenchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				w := &tmoBenchWriter{h: http.Header{}}
				for pb.Next() {
					c.h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// tmoObservedWriter is a writer that implements TimeoutObserver, behind an
// unwrapping layer as the live stats' writer sits behind the request
// metrics' recorder.
type tmoObservedWriter struct {
	tmoCountingWriter
	timedOut atomic.Int32
}

func (w *tmoObservedWriter) TimedOut() { w.timedOut.Add(1) }

type tmoUnwrapWriter struct{ http.ResponseWriter }

func (w *tmoUnwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestTimeoutHandlerObserver checks that a TimeoutObserver in the outer
// writer's chain hears of each timeout once, and of nothing else.
func TestTimeoutHandlerObserver(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout bool
		want    int32
	}{
		{"timed out", true, 1},
		{"answered in time", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTmoClock()
			entered := make(chan struct{}, 1)
			h := NewTimeoutHandlerWithClock(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				if tc.timeout {
					<-r.Context().Done()
					return
				}
				w.Write([]byte("ok"))
			}), tmoMsg, tmoFixed(time.Second, 0, 0), nil, clk)
			ow := &tmoObservedWriter{tmoCountingWriter: tmoCountingWriter{h: http.Header{}}}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(&tmoUnwrapWriter{ow}, httptest.NewRequest(http.MethodGet, "/", nil))
			}()
			tmoWait(t, entered, "the inner handler")
			if tc.timeout {
				clk.step(time.Second)
			}
			tmoWait(t, done, "ServeHTTP to return")
			clk.step(time.Hour) // nothing may fire after the handler returned
			if got := ow.timedOut.Load(); got != tc.want {
				t.Errorf("TimedOut called %d times, want %d", got, tc.want)
			}
		})
	}
}
