package h2c

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// seen is what the test handler records about one request.
type seen struct {
	proto, method, uri string
	header             http.Header
}

// testServer serves h (by default: record the request and answer
// "<proto> <method> <uri>") with Configure applied, on a loopback port.
type testServer struct {
	srv  *http.Server
	addr string

	mu   sync.Mutex
	seen []seen
}

func newTestServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	ts := newUnstartedTestServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.serve(t, ln)
	return ts
}

// newUnstartedTestServer is newTestServer without a listener.
func newUnstartedTestServer(h http.HandlerFunc) *testServer {
	ts := &testServer{}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) //nolint:errcheck // drained for the test
			fmt.Fprintf(w, "%s %s %s", r.Proto, r.Method, r.RequestURI)
		}
	}
	ts.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.seen = append(ts.seen, seen{r.Proto, r.Method, r.RequestURI, r.Header.Clone()})
		ts.mu.Unlock()
		h(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	Configure(ts.srv)
	return ts
}

// serve serves ts.srv on ln until the test ends.
func (ts *testServer) serve(t *testing.T, ln net.Listener) {
	t.Helper()
	ts.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	}()
	t.Cleanup(func() {
		ts.srv.Close()
		<-done
	})
}

func (ts *testServer) requests() []seen {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]seen(nil), ts.seen...)
}

// h2Client speaks HTTP/2 on an upgraded connection.
type h2Client struct {
	t    *testing.T
	conn net.Conn
	fr   *http2.Framer
	acks int // SETTINGS acknowledgements received
}

// stream is one HTTP/2 stream's answer.
type stream struct {
	status string
	body   string
	frames []int // DATA frame lengths
	ended  bool
}

// upgradeRequest writes req (an HTTP/1.1 request head, without the final
// CRLF) on a new connection and returns the connection and the response.
func upgradeRequest(t *testing.T, addr, req string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // fresh connection
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to the upgrade request: %v", err)
	}
	return conn, br, resp
}

// startH2 sends the client preface and settings after a 101.
func startH2(t *testing.T, conn net.Conn, br *bufio.Reader, settings ...http2.Setting) *h2Client {
	t.Helper()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return &h2Client{t: t, conn: conn, fr: fr}
}

// read reads frames until stream id ends, acknowledging the server's
// settings and counting acknowledgements of ours.
func (c *h2Client) read(id uint32) stream {
	c.t.Helper()
	var s stream
	var body strings.Builder
	for !s.ended {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("stream %d (%+v): %v", id, s, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				c.acks++
			} else if err := c.fr.WriteSettingsAck(); err != nil {
				c.t.Fatal(err)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				s.status = f.PseudoValue("status")
				s.ended = f.StreamEnded()
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body.Write(f.Data())
				s.frames = append(s.frames, len(f.Data()))
				s.ended = f.StreamEnded()
			}
		case *http2.RSTStreamFrame:
			c.t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			c.t.Fatalf("GOAWAY while reading stream %d: %v", id, f.ErrCode)
		}
	}
	s.body = body.String()
	return s
}

// ping sends a PING and reads up to its answer, counting SETTINGS
// acknowledgements: the server answers frames in order, so every
// acknowledgement of the client's SETTINGS has come by then.
func (c *h2Client) ping() {
	c.t.Helper()
	if err := c.fr.WritePing(false, [8]byte{1}); err != nil {
		c.t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				c.acks++
			} else if err := c.fr.WriteSettingsAck(); err != nil {
				c.t.Fatal(err)
			}
		case *http2.PingFrame:
			if f.IsAck() {
				return
			}
		}
	}
}

// get opens stream id with GET path and extra header fields.
func (c *h2Client) get(id uint32, authority, path string, extra ...string) {
	c.t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fields := []string{":method", "GET", ":scheme", "http", ":authority", authority, ":path", path}
	fields = append(fields, extra...)
	for i := 0; i < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}) //nolint:errcheck // bytes.Buffer
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

func settingsHeader(ss ...http2.Setting) string {
	var b []byte
	for _, s := range ss {
		b = append(b, byte(s.ID>>8), byte(s.ID), byte(s.Val>>24), byte(s.Val>>16), byte(s.Val>>8), byte(s.Val))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func upgradeHead(method, uri, host, settings string, extra ...string) string {
	s := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n", method, uri, host, settings)
	for _, e := range extra {
		s += e + "\r\n"
	}
	return s
}

// TestUpgrade: the upgrade request is answered 101 and served as stream 1
// with its HTTP/1.1 semantics and without the consumed upgrade headers;
// the next stream is HTTP/2; the client's settings are acknowledged exactly
// once (the synthetic SETTINGS frame's acknowledgement never reaches it).
func TestUpgrade(t *testing.T) {
	ts := newTestServer(t, nil)
	conn, br, resp := upgradeRequest(t, ts.addr, upgradeHead("GET", "/a?b=c", "example.com", settingsHeader(http2.Setting{ID: http2.SettingEnablePush, Val: 0}), "X-Custom: 1"))
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "h2c") {
		t.Fatalf("upgrade answered %s %v, want 101 with Upgrade: h2c", resp.Status, resp.Header)
	}
	c := startH2(t, conn, br)
	s1 := c.read(1)
	if s1.status != "200" || s1.body != "HTTP/1.1 GET /a?b=c" {
		t.Errorf("stream 1 = %s %q, want 200 %q", s1.status, s1.body, "HTTP/1.1 GET /a?b=c")
	}
	c.get(3, "example.com", "/next", markerHeader, "forged")
	s3 := c.read(3)
	if s3.status != "200" || s3.body != "HTTP/2.0 GET /next" {
		t.Errorf("stream 3 = %s %q, want 200 %q", s3.status, s3.body, "HTTP/2.0 GET /next")
	}
	c.ping()
	if c.acks != 1 {
		t.Errorf("client got %d SETTINGS acknowledgements for its one SETTINGS frame, want 1", c.acks)
	}

	reqs := ts.requests()
	if len(reqs) != 2 {
		t.Fatalf("handler saw %d requests, want 2", len(reqs))
	}
	first := reqs[0]
	for _, h := range []string{"Upgrade", "Http2-Settings", "Connection", markerHeader} {
		if v, ok := first.header[http.CanonicalHeaderKey(h)]; ok {
			t.Errorf("stream 1 request kept %s: %q", h, v)
		}
	}
	if first.header.Get("X-Custom") != "1" {
		t.Errorf("stream 1 request lost X-Custom: %v", first.header)
	}
	if _, ok := reqs[1].header[http.CanonicalHeaderKey(markerHeader)]; ok {
		t.Errorf("a client-sent %s reached the handler: %v", markerHeader, reqs[1].header)
	}
}

// TestUpgradeSettingsReadDuringWrite is the regression test for a client
// whose SETTINGS frame went unacknowledged: net/http's HTTP/2 server
// answers all the SETTINGS frames it reads while one of its writes is in
// flight with a single acknowledgement, so when the client's SETTINGS
// frame was read with the synthetic one during the server's first write,
// that acknowledgement was dropped as the synthetic frame's. Here the
// client's preface and SETTINGS come with the upgrade request, and the
// server's first HTTP/2 write blocks until the server reads the
// connection again (it has then processed every frame it had: the
// synthetic ones and the client's SETTINGS), or 100ms pass if it does not.
func TestUpgradeSettingsReadDuringWrite(t *testing.T) {
	ts := newUnstartedTestServer(nil)
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	sc := &stallConn{Conn: server, readAgain: make(chan struct{})}
	ln := &connListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- sc
	ts.serve(t, ln)

	client.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // net.Pipe
	var settings bytes.Buffer
	if err := http2.NewFramer(&settings, nil).WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go io.WriteString(client, upgradeHead("GET", "/s", "h", settingsHeader(http2.Setting{ID: http2.SettingEnablePush, Val: 0}))+"\r\n"+http2.ClientPreface+settings.String()) //nolint:errcheck // the reads below fail if it does
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v; want 101", resp, err)
	}
	fr := http2.NewFramer(client, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c := &h2Client{t: t, conn: client, fr: fr}
	if s := c.read(1); s.status != "200" || s.body != "HTTP/1.1 GET /s" {
		t.Errorf("stream 1 = %s %q, want 200 %q", s.status, s.body, "HTTP/1.1 GET /s")
	}
	c.ping()
	if c.acks != 1 {
		t.Errorf("client got %d SETTINGS acknowledgements for its one SETTINGS frame, want 1", c.acks)
	}
}

// stallConn is the server's end of a connection whose second write, the
// HTTP/2 server's first after the 101, waits until the server reads again
// after the 101 (readAgain), or 100ms.
type stallConn struct {
	net.Conn
	mu        sync.Mutex
	writes    int
	readAgain chan struct{}
	once      sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.writes > 0 {
		c.once.Do(func() { close(c.readAgain) })
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *stallConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	second := c.writes == 2
	c.mu.Unlock()
	if second {
		select {
		case <-c.readAgain:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return c.Conn.Write(p)
}

// connListener accepts the connections sent on conns.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// TestUpgradeHead: a HEAD upgrade is answered without a body.
func TestUpgradeHead(t *testing.T) {
	ts := newTestServer(t, nil)
	conn, br, resp := upgradeRequest(t, ts.addr, upgradeHead("HEAD", "/", "h", ""))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s, want 101", resp.Status)
	}
	s := startH2(t, conn, br).read(1)
	if s.status != "200" || len(s.frames) != 0 {
		t.Errorf("HEAD stream 1 = %s with DATA frames %v, want 200 and none", s.status, s.frames)
	}
	if r := ts.requests(); len(r) != 1 || r[0].method != http.MethodHead || r[0].proto != "HTTP/1.1" {
		t.Errorf("handler saw %+v, want one HTTP/1.1 HEAD", r)
	}
}

// TestUpgradeAppliesClientSettings: the HTTP2-Settings payload takes
// effect before the client's own SETTINGS frame: a 5-byte initial window
// limits stream 1's first DATA frame.
func TestUpgradeAppliesClientSettings(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 100)) //nolint:errcheck // test body
	})
	conn, br, _ := upgradeRequest(t, ts.addr, upgradeHead("GET", "/", "h", settingsHeader(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5})))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	// The client's own SETTINGS repeats the window, so that the server's
	// view does not change when it arrives.
	fr := http2.NewFramer(conn, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 5}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			if n := len(d.Data()); n == 0 || n > 5 {
				t.Errorf("first DATA frame on stream 1 has %d bytes, want 1..5 (initial window 5)", n)
			}
			return
		}
	}
}

// TestNoUpgrade: requests the handshake cannot take are served as HTTP/1.1,
// without the h2c upgrade headers.
func TestNoUpgrade(t *testing.T) {
	good := settingsHeader()
	for _, tc := range []struct {
		name, req string
	}{
		{"request with a body", upgradeHead("POST", "/", "h", good, "Content-Length: 3") + "\r\nabc"},
		{"chunked body", upgradeHead("POST", "/", "h", good, "Transfer-Encoding: chunked") + "\r\n3\r\nabc\r\n0\r\n"},
		{"settings not base64url", upgradeHead("GET", "/", "h", "!!")},
		{"settings not whole 6-byte entries", upgradeHead("GET", "/", "h", base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3, 4, 5}))},
		{"two settings headers", upgradeHead("GET", "/", "h", good, "HTTP2-Settings: "+good)},
		{"no settings header", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"},
		{"Connection lacks HTTP2-Settings", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n"},
		{"CONNECT", "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n"},
		{"host too long", upgradeHead("GET", "/", strings.Repeat("h", maxAuthority+1), good)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			ts.srv.MaxHeaderBytes = 64 << 10
			_, _, resp := upgradeRequest(t, ts.addr, tc.req)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "HTTP/1.") {
				t.Fatalf("answered %s %q, want 200 over HTTP/1.x", resp.Status, body)
			}
			r := ts.requests()
			if len(r) != 1 {
				t.Fatalf("handler saw %d requests, want 1", len(r))
			}
			for _, h := range []string{"Upgrade", "Http2-Settings"} {
				if v, ok := r[0].header[h]; ok {
					t.Errorf("handler saw %s: %q", h, v)
				}
			}
			for _, v := range r[0].header["Connection"] {
				if headerHasToken([]string{v}, "Upgrade") || headerHasToken([]string{v}, "HTTP2-Settings") {
					t.Errorf("handler saw Connection: %q", v)
				}
			}
		})
	}
}

// TestUpgradeBadPreface: a client that does not send the HTTP/2 preface
// after the 101 is disconnected and no request is served.
func TestUpgradeBadPreface(t *testing.T) {
	ts := newTestServer(t, nil)
	conn, br, resp := upgradeRequest(t, ts.addr, upgradeHead("GET", "/", "h", ""))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s, want 101", resp.Status)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Errorf("after a bad preface read %q, %v; want the connection closed", b, err)
	}
	if r := ts.requests(); len(r) != 0 {
		t.Errorf("handler saw %+v, want nothing", r)
	}
}

// TestPriorKnowledge: net/http's prior-knowledge h2c stays on.
func TestPriorKnowledge(t *testing.T) {
	ts := newTestServer(t, nil)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + ts.addr + "/pk")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(b) != "HTTP/2.0 GET /pk" {
		t.Errorf("prior knowledge: %s %q, want HTTP/2 and %q", resp.Proto, b, "HTTP/2.0 GET /pk")
	}
}

// TestUpgradedShutdown: Shutdown sends GOAWAY on an upgraded connection,
// and a request in flight on it completes.
func TestUpgradedShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done") //nolint:errcheck // test body
	})
	conn, br, _ := upgradeRequest(t, ts.addr, upgradeHead("GET", "/", "h", ""))
	c := startH2(t, conn, br)
	c.read(1)
	c.get(3, "h", "/slow")
	<-started
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.srv.Shutdown(context.Background()) }()

	sawGoAway := false
	var body strings.Builder
	for ended := false; !ended; {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading: %v (GOAWAY seen: %v)", err, sawGoAway)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck() //nolint:errcheck // best effort
			}
		case *http2.GoAwayFrame:
			sawGoAway = true
			close(release)
		case *http2.DataFrame:
			if f.StreamID == 3 {
				body.WriteString(string(f.Data()))
				ended = f.StreamEnded()
			}
		case *http2.MetaHeadersFrame:
			ended = f.StreamID == 3 && f.StreamEnded()
		}
	}
	if !sawGoAway || body.String() != "done" {
		t.Errorf("GOAWAY seen %v, in-flight body %q; want GOAWAY and %q", sawGoAway, body.String(), "done")
	}
	if err := <-shutdown; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestUpgradeConcurrentStreams: after the upgrade, streams run in parallel
// on the connection while stream 1 is still being answered, and each gets
// its own answer.
func TestUpgradeConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "/first" {
			<-release // stream 1 answers last
		}
		fmt.Fprintf(w, "%s %s", r.Proto, r.RequestURI)
	})
	conn, br, _ := upgradeRequest(t, ts.addr, upgradeHead("GET", "/first", "h", ""))
	c := startH2(t, conn, br)
	const n = 10
	for i := range n {
		c.get(uint32(3+2*i), "h", fmt.Sprintf("/s%d", i))
	}
	bodies := map[uint32]string{}
	body := map[uint32]*strings.Builder{}
	released := false
	for len(bodies) < n+1 {
		if len(bodies) == n && !released {
			close(release) // every other stream is done; now stream 1
			released = true
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames (%d streams done): %v", len(bodies), err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck() //nolint:errcheck // best effort
			}
		case *http2.DataFrame:
			if body[f.StreamID] == nil {
				body[f.StreamID] = &strings.Builder{}
			}
			body[f.StreamID].Write(f.Data())
			if f.StreamEnded() {
				bodies[f.StreamID] = body[f.StreamID].String()
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		}
	}
	if bodies[1] != "HTTP/1.1 /first" {
		t.Errorf("stream 1 = %q, want %q", bodies[1], "HTTP/1.1 /first")
	}
	for i := range n {
		id := uint32(3 + 2*i)
		if want := fmt.Sprintf("HTTP/2.0 /s%d", i); bodies[id] != want {
			t.Errorf("stream %d = %q, want %q", id, bodies[id], want)
		}
	}
}
