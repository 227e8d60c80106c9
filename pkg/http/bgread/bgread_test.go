package bgread

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// never is a delay no test waits out: a read deferred by it that is not
// aborted hangs the test (each one bounds its waits and fails instead).
const never = time.Hour

// serve starts an HTTP/1.1 server (and h2c by prior knowledge if h2c) on
// loopback with Configure(delay), and returns its address. The count of
// deferred reads that went to the socket is in socketReads; gotByte
// receives (without blocking) when one of them read a byte.
func serve(t *testing.T, delay time.Duration, h2c bool, h http.Handler) (addr string, socketReads *atomic.Int64, gotByte <-chan struct{}) {
	t.Helper()
	addr, c := serveCounting(t, delay, h2c, h)
	return addr, &c.socketReads, c.gotByte
}

// counts are what the hooks of serveCounting's connections saw.
type counts struct {
	socketReads, applied atomic.Int64
	gotByte              chan struct{}
}

// serveCounting is serve, with the counts of its connections' hooks
// (which are the server's own: a connection of an earlier test cannot
// touch them).
func serveCounting(t *testing.T, delay time.Duration, h2c bool, h http.Handler) (string, *counts) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	if h2c {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = p
	}
	var states atomic.Int64
	srv.ConnState = func(net.Conn, http.ConnState) { states.Add(1) }
	wrapped := Configure(srv, ln, delay)
	c := &counts{gotByte: make(chan struct{}, 1)}
	l := wrapped.(listener)
	l.hooks = &testHooks{
		socketRead: func(read int) {
			c.socketReads.Add(1)
			if read == 1 {
				select {
				case c.gotByte <- struct{}{}:
				default:
				}
			}
		},
		applyDeadline: func() { c.applied.Add(1) },
	}
	wrapped = l
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(wrapped) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		if states.Load() == 0 {
			t.Error("the server's own ConnState hook was not chained")
		}
	})
	return ln.Addr().String(), c
}

// dial connects to addr, with every read and write bounded by 5 s, and
// closes the connection when the test ends.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// waitFor waits up to 5 s for cond to hold.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5 s", what)
		}
	}
}

// rawRequest writes req on c and reads one response, within 5 s.
func rawRequest(t *testing.T, c net.Conn, br *bufio.Reader, req string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A request answered within the delay never reads the socket in the
// background, and its context is not cancelled by the abort.
func TestFastRequestsSkipSocketRead(t *testing.T) {
	var cancelled atomic.Int64
	addr, counts := serveCounting(t, never, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Context().Err() != nil {
			cancelled.Add(1)
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	c, br := dial(t, addr)
	for i := range 50 {
		req := fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		want := fmt.Sprintf("GET /%d", i)
		if i%2 == 1 { // a body: the background read starts at its end
			req = fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", i)
			want = fmt.Sprintf("POST /%d", i)
		}
		resp := rawRequest(t, c, br, req)
		if got := bodyOf(t, resp); resp.StatusCode != 200 || got != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, got, want)
		}
	}
	if n := counts.socketReads.Load(); n != 0 {
		t.Errorf("%d background reads went to the socket, want 0", n)
	}
	if n := cancelled.Load(); n != 0 {
		t.Errorf("%d request contexts cancelled, want 0", n)
	}
	// The first request's header deadline and its reset; net/http sets
	// about 250 for the 50 requests.
	if n := counts.applied.Load(); n > 2 {
		t.Errorf("%d read deadlines went to the socket, want at most 2", n)
	}
}

// Read deadlines wait for the next socket read, apply at once to a read at
// the socket, and go straight to the socket once deferral is off (where
// the socket's own reads, WriteTo, must honour them).
func TestLazyDeadlines(t *testing.T) {
	c, client := acceptedConn(t)
	var applied atomic.Int64
	c.hooks = &testHooks{applyDeadline: func() { applied.Add(1) }}
	buf := make([]byte, 4)

	// Kept, not applied, until a read; then the last one applies.
	for _, d := range []time.Time{time.Now().Add(time.Minute), {}, time.Unix(1, 0), {}, time.Unix(1, 0)} {
		if err := c.SetReadDeadline(d); err != nil {
			t.Fatal(err)
		}
	}
	if n := applied.Load(); n != 0 {
		t.Fatalf("%d deadlines applied before any read, want 0", n)
	}
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read after a past deadline: %v, want a timeout", err)
	}
	// The same deadline again is not applied again.
	c.SetReadDeadline(time.Unix(1, 0))
	c.Read(buf)
	if n := applied.Load(); n != 1 {
		t.Fatalf("%d deadlines applied, want 1", n)
	}
	// A read at the socket gets a new deadline at once.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Read(buf); errc <- err }()
	waitFor(t, "the read is at the socket", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.atSocket == 1 })
	c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("read ended by a deadline: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set during a socket read did not end it")
	}
	// Off (hijacked): deadlines apply at once, pending ones when it turns
	// off, and bind the socket's own reads.
	c.SetReadDeadline(time.Time{})
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	before := applied.Load()
	c.turnOff()
	if applied.Load() != before+1 {
		t.Fatal("the pending deadline was not applied when deferral turned off")
	}
	start := time.Now()
	if _, err := c.WriteTo(io.Discard); !isTimeout(err) {
		t.Fatalf("WriteTo after a 50 ms deadline: %v, want a timeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("WriteTo outlived its deadline")
	}
	c.SetReadDeadline(time.Unix(1, 0))
	if applied.Load() != before+2 {
		t.Fatal("a deadline set after turning off was not applied at once")
	}
	client.Write([]byte("q"))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read after a past deadline, off: %v, want a timeout", err)
	}
}

// A client that goes away during a request longer than the delay still
// cancels the request's context.
func TestClientGoneCancelsAfterDelay(t *testing.T) {
	started := make(chan struct{})
	result := make(chan error, 1)
	addr, socketReads, _ := serve(t, 5*time.Millisecond, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			result <- nil
		case <-time.After(5 * time.Second):
			result <- fmt.Errorf("context not cancelled 5 s after the client closed")
		}
	}))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if socketReads.Load() == 0 {
		t.Error("the deferred read never went to the socket")
	}
}

// Pipelined requests are answered in order, whether the next one arrives
// with the first or while it is served (then the background read, gone to
// the socket after the delay, takes its first byte).
func TestPipelined(t *testing.T) {
	waiting, release := make(chan struct{}), make(chan struct{})
	addr, socketReads, gotByte := serve(t, time.Millisecond, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			close(waiting)
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	// The three usually arrive and are read together, so that the first
	// background read to find a byte is /wait's, taking /c's first byte.
	select {
	case <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("/wait was not served")
	}
	io.WriteString(c, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-gotByte:
	case <-time.After(5 * time.Second):
		t.Fatal("no background read took the first byte of /c")
	}
	close(release)
	for _, want := range []string{"/a", "/b", "/wait", "/c"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the response to %s: %v", want, err)
		}
		if got := bodyOf(t, resp); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if socketReads.Load() == 0 {
		t.Error("the deferred read never went to the socket")
	}
}

// Once hijacked, one-byte reads go to the socket at once.
func TestHijackedNotDeferred(t *testing.T) {
	addr, socketReads, _ := serve(t, never, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		for range 5 { // one byte at a time, from the conn itself
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				t.Error(err)
				return
			}
			nc.Write(b[:])
		}
	}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	for _, ch := range "hello" {
		c.Write([]byte{byte(ch)})
		b, err := br.ReadByte()
		if err != nil || rune(b) != ch {
			t.Fatalf("echo of %q: %q %v", ch, b, err)
		}
	}
	if n := socketReads.Load(); n != 0 {
		t.Errorf("%d deferred reads went to the socket, want 0", n)
	}
}

// HTTP/2 by prior knowledge is never deferred: one-byte DATA frames and
// the frames' own reads go straight to the socket.
func TestH2CPriorKnowledgeNotDeferred(t *testing.T) {
	addr, _, _ := serve(t, never, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Proto, b)
	}))
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p, TLSClientConfig: &tls.Config{}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, body := range []string{"x", "y", "z"} {
		resp, err := client.Post("http://"+addr+"/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if got := bodyOf(t, resp); got != "HTTP/2.0 "+body {
			t.Fatalf("got %q", got)
		}
		resp.Body.Close()
	}
}

// A read deadline the handler sets in the past ends a deferred read as it
// ends a socket read, and one cleared again lets reads wait.
func TestDeadlines(t *testing.T) {
	c, client := acceptedConn(t)
	c.state.Store(stateArmed)

	// Set before the read: it fails at once.
	c.SetDeadline(time.Unix(1, 0))
	var b [1]byte
	if _, err := c.Read(b[:]); !isTimeout(err) {
		t.Fatalf("read after a past deadline: %v, want a timeout", err)
	}
	// A recent past deadline set before the read ends it after the delay,
	// at the socket.
	c.delay = 10 * time.Millisecond
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(b[:]); !isTimeout(err) {
		t.Fatalf("read after a recent past deadline: %v, want a timeout", err)
	}
	c.delay = never
	// Set during the read: it ends the wait.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Read(b[:]); errc <- err }()
	waitFor(t, "the deferred read waits", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.waiting })
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("read ended by a past deadline: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a past deadline did not end the deferred read")
	}
	// A future deadline does not end the wait (the socket's deadline
	// applies after the delay), and no stale abort is left behind.
	c.SetReadDeadline(time.Time{})
	c.delay = 10 * time.Millisecond
	client.Write([]byte("z"))
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(b[:]); n != 1 || b[0] != 'z' || err != nil {
		t.Fatalf("read after the delay: %d %q %v", n, b[0], err)
	}
	// Unarmed reads of any size go to the socket.
	c.state.Store(stateOff)
	c.delay = never
	client.Write([]byte("w"))
	if n, err := c.Read(b[:]); n != 1 || b[0] != 'w' || err != nil {
		t.Fatalf("unarmed read: %d %q %v", n, b[0], err)
	}
}

// acceptedConn returns a connection accepted by a Configure'd listener
// (delay never) and its client end, both closed when the test ends.
func acceptedConn(t *testing.T) (*conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := Configure(&http.Server{}, ln, never)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc.(*conn), client
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Accept hands back connections that are not TCP as they are.
func TestNonTCPPassesThrough(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	l := Configure(&http.Server{}, &oneConnListener{c: a}, never)
	c, err := l.Accept()
	if err != nil || c != a {
		t.Fatalf("Accept: %v %v, want the pipe itself", c, err)
	}
	if _, err := l.Accept(); err == nil {
		t.Fatal("the listener's error was not returned")
	}
}

type oneConnListener struct {
	c    net.Conn
	used atomic.Bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.used.Swap(true) {
		return nil, net.ErrClosed
	}
	return l.c, nil
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }
