package h1server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait of these tests.
const waitLimit = 10 * time.Second

// testServer is a Server serving on a loopback listener.
type testServer struct {
	s        *Server
	addr     string
	done     chan struct{}
	serveErr error // once done is closed
}

// startServer serves s (with a generic server of its own if it has none)
// until the test ends.
func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	if s.Generic == nil {
		s.Generic = &http.Server{Handler: s.Handler, ErrorLog: newLogger(io.Discard)}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: s, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		ts.serveErr = s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-ts.done
	})
	return ts
}

// wait returns what Serve returned.
func (ts *testServer) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-ts.done:
		return ts.serveErr
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
		return nil
	}
}

// pendingByte reports whether a connection of s holds a byte taken by a
// background read.
func pendingByte(s *Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		has := c.cr.hasByte
		c.mu.Unlock()
		if has {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds, for at most waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// recv receives from ch, for at most waitLimit.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// client is a raw client connection.
type client struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	raw strings.Builder // what was read
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	cl := &client{t: t, c: c}
	cl.br = bufio.NewReader(io.TeeReader(c, &cl.raw))
	return cl
}

func (cl *client) send(raw string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
}

// get sends a GET of path.
func (cl *client) get(path string) {
	cl.t.Helper()
	cl.send("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n")
}

// read reads a response and its body.
func (cl *client) read(method string) (*http.Response, string) {
	cl.t.Helper()
	resp, err := http.ReadResponse(cl.br, &http.Request{Method: method})
	if err != nil {
		cl.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		cl.t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(b)
}

// expectEOF checks that the server closed the connection.
func (cl *client) expectEOF() {
	cl.t.Helper()
	b, err := cl.br.ReadByte()
	if err != io.EOF {
		cl.t.Fatalf("read %q, %v; want EOF", b, err)
	}
}

func TestShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})

	idle := dial(t, ts.addr)
	idle.get("/fast")
	if resp, body := idle.read("GET"); body != "/fast" || resp.Close {
		t.Fatalf("body %q, close %v", body, resp.Close)
	}
	active := dial(t, ts.addr)
	active.get("/slow")
	recv(t, started, "the slow handler")

	shutdown := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	go func() { shutdown <- ts.s.Shutdown(ctx) }()

	idle.expectEOF()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	if c, err := net.Dial("tcp", ts.addr); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted during Shutdown")
	}

	close(release)
	resp, body := active.read("GET")
	// (ReadResponse deletes the header it sets Close for.)
	if body != "/slow" || !resp.Close || !strings.Contains(active.raw.String(), "\r\nConnection: close\r\n") {
		t.Fatalf("body %q, close %v, response %q", body, resp.Close, active.raw.String())
	}
	active.expectEOF()
	if err := recv(t, shutdown, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := ts.wait(t); err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestClientGone(t *testing.T) {
	type result struct {
		err      error
		notified bool
	}
	started, results := make(chan struct{}), make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notify := w.(http.CloseNotifier).CloseNotify()
		close(started)
		var res result
		select {
		case <-r.Context().Done():
			res.err = r.Context().Err()
		case <-time.After(waitLimit):
		}
		select {
		case <-notify:
			res.notified = true
		case <-time.After(waitLimit):
		}
		results <- res
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})

	cl := dial(t, ts.addr)
	cl.get("/")
	recv(t, started, "the handler")
	cl.c.Close()
	res := recv(t, results, "the handler's result")
	if res.err != context.Canceled || !res.notified {
		t.Fatalf("context error %v, close notified %v", res.err, res.notified)
	}
}

// A request answered within BackgroundReadDelay reads nothing in the
// background, and is never cancelled.
func TestFastRequestNotCancelled(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	remotes := map[string]bool{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		errs = append(errs, r.Context().Err())
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Hour})

	cl := dial(t, ts.addr)
	const n = 50
	for i := range n {
		cl.get(fmt.Sprintf("/%d", i))
		if resp, body := cl.read("GET"); body != "ok" || resp.Close {
			t.Fatalf("request %d: body %q, close %v", i, body, resp.Close)
		}
	}
	// And pipelined.
	cl.send(strings.Repeat("GET / HTTP/1.1\r\nHost: h\r\n\r\n", n))
	for i := range n {
		if _, body := cl.read("GET"); body != "ok" {
			t.Fatalf("pipelined request %d: body %q", i, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 2*n || len(remotes) != 1 {
		t.Fatalf("%d requests on %d connections", len(errs), len(remotes))
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: context error %v", i, err)
		}
	}
}

// The background read of a slow request takes the next request's first
// byte, which is then its first byte.
func TestPipelinedWhileSlow(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	slowErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			close(started)
			<-release
			slowErr <- r.Context().Err()
			io.WriteString(w, "slow")
		default:
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %q %v %d", r.Method, r.URL.Path, b, err, r.ContentLength)
		}
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})

	cl := dial(t, ts.addr)
	cl.get("/slow")
	recv(t, started, "the slow handler")
	cl.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	waitFor(t, "the background read to take a byte", func() bool { return pendingByte(ts.s) })
	close(release)

	if _, body := cl.read("GET"); body != "slow" {
		t.Fatalf("first body %q", body)
	}
	if err := recv(t, slowErr, "the slow handler"); err != nil {
		t.Fatalf("the slow request's context: %v", err)
	}
	if _, body := cl.read("POST"); body != `POST /echo "hello" <nil> 5` {
		t.Fatalf("second body %q", body)
	}
	cl.get("/after")
	if _, body := cl.read("GET"); body != `GET /after "" <nil> 0` {
		t.Fatalf("third body %q", body)
	}
}

// A hijacker reads the byte a background read took.
func TestHijackAfterBackgroundRead(t *testing.T) {
	started, taken := make(chan struct{}), make(chan struct{})
	lines := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-taken
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			lines <- "hijack: " + err.Error()
			return
		}
		defer c.Close()
		line, err := brw.ReadString('\n')
		if err != nil {
			line = "read: " + err.Error()
		}
		lines <- line
		brw.WriteString("got " + line)
		brw.Flush()
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})

	cl := dial(t, ts.addr)
	cl.get("/hijack")
	recv(t, started, "the handler")
	cl.send("ping\n")
	waitFor(t, "the background read to take a byte", func() bool { return pendingByte(ts.s) })
	close(taken)
	if line := recv(t, lines, "the hijacker"); line != "ping\n" {
		t.Fatalf("the hijacker read %q", line)
	}
	b, err := io.ReadAll(cl.br)
	if string(b) != "got ping\n" || err != nil {
		t.Fatalf("read %q, %v", b, err)
	}
}

func TestHandoffUpgrade(t *testing.T) {
	fast := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	gen := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "generic "+r.Header.Get("Upgrade"))
	})
	ts := startServer(t, &Server{Handler: fast, BackgroundReadDelay: time.Millisecond,
		Generic: &http.Server{Handler: gen, ErrorLog: newLogger(io.Discard)}})

	cl := dial(t, ts.addr)
	for range 2 {
		cl.get("/")
		if _, body := cl.read("GET"); body != "fast" {
			t.Fatalf("body %q", body)
		}
	}
	cl.send("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if _, body := cl.read("GET"); body != "generic websocket" {
		t.Fatalf("upgrade request: body %q", body)
	}
	for range 2 {
		cl.get("/")
		if _, body := cl.read("GET"); body != "generic " {
			t.Fatalf("after the handoff: body %q", body)
		}
	}
	// Other connections still take the fast path.
	other := dial(t, ts.addr)
	other.get("/")
	if _, body := other.read("GET"); body != "fast" {
		t.Fatalf("another connection: body %q", body)
	}
}

func TestHandoffH2CPriorKnowledge(t *testing.T) {
	fast := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast "+r.Proto) })
	gen := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "generic "+r.Proto) })
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	ts := startServer(t, &Server{Handler: fast, BackgroundReadDelay: time.Millisecond,
		Generic: &http.Server{Handler: gen, Protocols: &protos, ErrorLog: newLogger(io.Discard)}})

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &h2c}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: waitLimit}
	for i := range 3 {
		resp, err := c.Get("http://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "generic HTTP/2.0" || resp.ProtoMajor != 2 {
			t.Fatalf("request %d: %s, body %q, %v", i, resp.Proto, b, err)
		}
	}

	cl := dial(t, ts.addr)
	cl.get("/")
	if _, body := cl.read("GET"); body != "fast HTTP/1.1" {
		t.Fatalf("HTTP/1.1: body %q", body)
	}
}

func TestCloseClosesActive(t *testing.T) {
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		close(started)
		<-release
		io.WriteString(w, "late")
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Hour})

	cl := dial(t, ts.addr)
	cl.get("/")
	recv(t, started, "the handler")
	if err := ts.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Closed at once, with the handler still running.
	b, err := io.ReadAll(cl.br)
	var ne net.Error
	if len(b) != 0 || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read %q, %v; want the connection closed", b, err)
	}
	close(release)
	recv(t, done, "the handler")
	if err := ts.wait(t); err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestResponseController(t *testing.T) {
	results := make(chan [3]error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		results <- [3]error{
			rc.SetReadDeadline(time.Now().Add(time.Minute)),
			rc.SetWriteDeadline(time.Now().Add(time.Minute)),
			rc.EnableFullDuplex(),
		}
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
		io.WriteString(w, "ok")
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})

	cl := dial(t, ts.addr)
	cl.get("/")
	if _, body := cl.read("GET"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if errs := recv(t, results, "the handler"); errs != [3]error{} {
		t.Fatalf("SetReadDeadline, SetWriteDeadline, EnableFullDuplex: %v", errs)
	}
}

// A read deadline a handler sets is for its request: net/http's server
// clears it before it waits for the next request on the connection.
func TestReadDeadlineNotKept(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deadline" {
			// Passed already: the request has no body to read.
			http.NewResponseController(w).SetReadDeadline(time.Now())
		}
		io.WriteString(w, r.URL.Path)
	})
	plain := &http.Server{Handler: h, ErrorLog: newLogger(io.Discard)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainDone := make(chan struct{})
	go func() { defer close(plainDone); plain.Serve(ln) }()
	defer func() { plain.Close(); <-plainDone }()
	lean := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Hour})

	for _, srv := range []struct{ name, addr string }{{"net/http", ln.Addr().String()}, {"fast path", lean.addr}} {
		cl := dial(t, srv.addr)
		cl.get("/deadline")
		if _, body := cl.read("GET"); body != "/deadline" {
			t.Fatalf("%s: body %q", srv.name, body)
		}
		// Sent once the first response is read, so that the server
		// reads it from the connection.
		cl.get("/next")
		resp, err := http.ReadResponse(cl.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Errorf("%s: the next request on the connection: %v", srv.name, err)
			continue
		}
		resp.Body.Close()
	}
}

// Shutdown does not wait for a connection a handler hijacked (as
// net/http's), which stays the handler's.
func TestShutdownSkipsHijacked(t *testing.T) {
	hijacked, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		close(hijacked)
		<-release
		brw.WriteString("still mine\n")
		brw.Flush()
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Millisecond})
	cl := dial(t, ts.addr)
	cl.get("/hijack")
	recv(t, hijacked, "the hijacker")

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ts.s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (it waited for the hijacked connection)", err)
	}
	close(release)
	cl.c.SetReadDeadline(time.Now().Add(waitLimit))
	line, err := cl.br.ReadString('\n')
	if err != nil || line != "still mine\n" {
		t.Fatalf("after Shutdown the hijacker sent %q, %v", line, err)
	}
}

// TestPerRequestState: what one request's handler sets (response headers,
// the request's URL and fields) does not reach the next request on the same
// connection, although the response header map is the connection's; each
// request gets its own Request and URL, with the connection's context.
func TestPerRequestState(t *testing.T) {
	var (
		mu    sync.Mutex
		reqs  []*http.Request
		heads []http.Header
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r)
		heads = append(heads, w.Header().Clone())
		mu.Unlock()
		if r.URL.Path == "/first" {
			w.Header().Set("X-First", "1")
			r.URL.Path = "/changed" // a handler may change its request
			r.Header.Set("X-Changed", "1")
		}
		io.WriteString(w, r.URL.RawQuery)
	})
	ts := startServer(t, &Server{Handler: h, BackgroundReadDelay: time.Hour})
	cl := dial(t, ts.addr)
	cl.get("/first?a=1")
	if resp, body := cl.read("GET"); resp.Header.Get("X-First") != "1" || body != "a=1" {
		t.Fatalf("first response: header %v, body %q", resp.Header, body)
	}
	cl.get("/second?b=2")
	resp, body := cl.read("GET")
	if resp.Header.Get("X-First") != "" || body != "b=2" {
		t.Errorf("second response: header %v, body %q; want no X-First, b=2", resp.Header, body)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	first, second := reqs[0], reqs[1]
	if len(heads[1]) != 0 {
		t.Errorf("second handler's header map started with %v", heads[1])
	}
	if first == second || first.URL == second.URL {
		t.Error("the requests share a Request or a URL")
	}
	if first.URL.Path != "/changed" || second.URL.Path != "/second" || second.URL.RawQuery != "b=2" || second.Header.Get("X-Changed") != "" {
		t.Errorf("first URL %v, second URL %v, second header %v", first.URL, second.URL, second.Header)
	}
	if first.Context() != second.Context() || first.Context().Value(http.LocalAddrContextKey) == nil {
		t.Error("the requests' context is not the connection's")
	}
}
