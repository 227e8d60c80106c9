package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		addr    string
		wantErr string
	}{
		{"listening", context.Background(), ln.Addr().String(), ""},
		{"dead port", context.Background(), deadAddr(t), "connection refused"},
		{"expired context", expired, ln.Addr().String(), "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := TCPProbe(tt.ctx, tt.addr)
			checkErr(t, err, tt.wantErr)
		})
	}
	<-accepted // the listening case really connected
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("probe failed: %v", err)
	case want != "" && err == nil:
		t.Errorf("probe succeeded, want an error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("probe error %q, want it to contain %q", err, want)
	}
}

// seen is a request as an app saw it.
type seen struct {
	proto, path, query, ua, custom, conn, acceptEncoding string
}

// recorder is a test app that records the requests it sees.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	proto := req.Proto
	if req.Method == "PRI" { // an h2c preface at an HTTP/1-only server
		proto = "PRI"
	}
	r.reqs = append(r.reqs, seen{
		proto: proto, path: req.URL.Path, query: req.URL.RawQuery, ua: req.Header.Get("User-Agent"),
		custom: strings.Join(req.Header.Values("X-Custom"), ","), conn: req.Header.Get("Connection"),
		acceptEncoding: req.Header.Get("Accept-Encoding"),
	})
}

func (r *recorder) seen() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// newApp starts an HTTP/1.1 app on loopback whose answer is chosen by the
// request path; with h2cToo it also speaks h2c with prior knowledge.
func newApp(t *testing.T, rec *recorder, h2cToo bool) *httptest.Server {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		switch r.URL.Path {
		case "/ok", "/":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/redirect-loop":
			http.Redirect(w, r, "/redirect-loop", http.StatusFound)
		case "/redirect-bad":
			http.Redirect(w, r, "/500", http.StatusMovedPermanently)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		case "/big":
			w.Write(make([]byte, 1<<20)) // more than maxDrain
		case "/hang":
			<-r.Context().Done()
		case "/h2only":
			if r.ProtoMajor != 2 {
				w.WriteHeader(http.StatusHTTPVersionNotSupported)
			}
		case "/needs-header":
			if r.Header.Get("X-Custom") == "" {
				w.WriteHeader(http.StatusForbidden)
			}
		default:
			code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			if err != nil {
				code = http.StatusNotFound
			}
			w.WriteHeader(code)
		}
	})
	if h2cToo {
		h = h2c.NewHandler(h, &http2.Server{})
	}
	app := httptest.NewServer(h)
	t.Cleanup(app.Close)
	return app
}

func TestNewHTTPProbeErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    HTTPProbeOptions
		wantErr string
	}{
		{"empty scheme", HTTPProbeOptions{Host: "127.0.0.1", Port: 80}, "missing protocol scheme"},
		{"other scheme", HTTPProbeOptions{Scheme: "ftp", Host: "127.0.0.1", Port: 80}, `unsupported protocol scheme "ftp"`},
		{"empty host", HTTPProbeOptions{Scheme: "HTTP", Port: 80}, "empty host"},
		{"port 0", HTTPProbeOptions{Scheme: "HTTP", Host: "127.0.0.1"}, "port 0 is out of range"},
		{"port too big", HTTPProbeOptions{Scheme: "HTTP", Host: "127.0.0.1", Port: 65536}, "out of range"},
		{"bad path", HTTPProbeOptions{Scheme: "HTTP", Host: "127.0.0.1", Port: 80, Path: "/%zz"}, "invalid URL escape"},
		{"valid, mixed-case scheme", HTTPProbeOptions{Scheme: "hTTpS", Host: "::1", Port: 443, Path: "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewHTTPProbe(tt.opts)
			checkErr(t, err, tt.wantErr)
			if err == nil && p.withHeaders.URL.String() != "https://[::1]:443/x" {
				t.Errorf("URL = %s", p.withHeaders.URL)
			}
		})
	}
}

func TestHTTPProbe(t *testing.T) {
	rec := &recorder{}
	app := newApp(t, rec, false)
	host, port := hostPort(t, app.Listener.Addr().String())
	_, dead := hostPort(t, deadAddr(t))

	tests := []struct {
		name      string
		path      string
		port      int
		header    http.Header
		timeout   time.Duration
		wantErr   string
		wantPaths []string // what the app saw, in order
		wantQuery string
	}{
		{name: "200", path: "/ok", wantPaths: []string{"/ok"}},
		{name: "path without leading slash", path: "ok", wantPaths: []string{"/ok"}},
		{name: "empty path", path: "", wantPaths: []string{"/"}},
		{name: "query kept", path: "/ok?a=1&b=2", wantPaths: []string{"/ok"}, wantQuery: "a=1&b=2"},
		{name: "399", path: "/399", wantPaths: []string{"/399"}},
		{name: "304 is ready", path: "/not-modified", wantPaths: []string{"/not-modified"}},
		{name: "redirect followed", path: "/redirect", wantPaths: []string{"/redirect", "/ok"}},
		{name: "redirect to a failure", path: "/redirect-bad", wantErr: "got status code: 500", wantPaths: []string{"/redirect-bad", "/500"}},
		{name: "redirect loop", path: "/redirect-loop", wantErr: "stopped after 10 redirects"},
		{name: "400", path: "/400", wantErr: "got status code: 400", wantPaths: []string{"/400"}},
		{name: "404", path: "/nothing", wantErr: "got status code: 404", wantPaths: []string{"/nothing"}},
		{name: "500", path: "/500", wantErr: "HTTP probe did not respond Ready, got status code: 500", wantPaths: []string{"/500"}},
		{name: "503", path: "/503", wantErr: "got status code: 503", wantPaths: []string{"/503"}},
		{name: "big body", path: "/big", wantPaths: []string{"/big"}},
		{name: "custom headers", path: "/needs-header", header: http.Header{"X-Custom": {"a", "b"}}, wantPaths: []string{"/needs-header"}},
		{name: "timeout", path: "/hang", timeout: 20 * time.Millisecond, wantErr: "context deadline exceeded", wantPaths: []string{"/hang"}},
		{name: "dead port", path: "/ok", port: dead, wantErr: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.seen())
			p := tt.port
			if p == 0 {
				p = port
			}
			probe, err := NewHTTPProbe(HTTPProbeOptions{Scheme: "HTTP", Host: host, Port: p, Path: tt.path, Header: tt.header})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			err = probe.Probe(ctx)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != "" && strings.Contains(tt.wantErr, "status code") {
				var se *StatusError
				if !errors.As(err, &se) {
					t.Errorf("error %v is not a *StatusError", err)
				}
			}
			got := rec.seen()[before:]
			if tt.wantPaths != nil {
				var paths []string
				for _, s := range got {
					paths = append(paths, s.path)
				}
				if strings.Join(paths, " ") != strings.Join(tt.wantPaths, " ") {
					t.Errorf("app saw %v, want %v", paths, tt.wantPaths)
				}
			}
			for _, s := range got {
				if s.proto != "HTTP/1.1" || s.ua != KubeProbeUserAgent || s.conn != "close" || s.acceptEncoding != "gzip" {
					t.Errorf("app saw %+v; want HTTP/1.1, UA %q, Connection: close, Accept-Encoding: gzip", s, KubeProbeUserAgent)
				}
				if tt.wantQuery != "" && s.query != tt.wantQuery {
					t.Errorf("query = %q, want %q", s.query, tt.wantQuery)
				}
				if want := strings.Join(tt.header.Values("X-Custom"), ","); s.custom != want {
					t.Errorf("X-Custom = %q, want %q", s.custom, want)
				}
			}
		})
	}
}

// TestHTTPProbeAutoDetectHTTP2 follows CONTRACT.md §4.4: an h2c prior-knowledge
// GET without custom headers; if ready, the probe again over h2c with
// headers; else an HTTP/1.1 GET without custom headers decides.
func TestHTTPProbeAutoDetectHTTP2(t *testing.T) {
	type req struct{ proto, custom string }
	tests := []struct {
		name     string
		h2c      bool
		path     string
		header   http.Header
		autoOff  bool
		wantErr  string
		wantReqs []req // what the app saw; PRI is the h2c preface at an HTTP/1 app
	}{
		{name: "h2c app, no custom headers: one request", h2c: true, path: "/ok", wantReqs: []req{{"HTTP/2.0", ""}}},
		{name: "h2c app, custom headers: detection then probe", h2c: true, path: "/ok", header: http.Header{"X-Custom": {"v"}},
			wantReqs: []req{{"HTTP/2.0", ""}, {"HTTP/2.0", "v"}}},
		{name: "h2c app, probe needs the header", h2c: true, path: "/needs-header", header: http.Header{"X-Custom": {"v"}},
			wantErr: "got status code: 403", wantReqs: []req{{"HTTP/2.0", ""}, {"HTTP/1.1", ""}}},
		{name: "h2c-only app", h2c: true, path: "/h2only", wantReqs: []req{{"HTTP/2.0", ""}}},
		{name: "h2c-only app, auto-detection off", h2c: true, path: "/h2only", autoOff: true,
			wantErr: "got status code: 505", wantReqs: []req{{"HTTP/1.1", ""}}},
		{name: "HTTP/1 app falls back without headers", path: "/ok", header: http.Header{"X-Custom": {"v"}},
			wantReqs: []req{{"PRI", ""}, {"HTTP/1.1", ""}}},
		{name: "HTTP/1 app, auto-detection off, headers sent", path: "/ok", header: http.Header{"X-Custom": {"v"}}, autoOff: true,
			wantReqs: []req{{"HTTP/1.1", "v"}}},
		{name: "HTTP/1 app failing", path: "/500", wantErr: "got status code: 500", wantReqs: []req{{"PRI", ""}, {"HTTP/1.1", ""}}},
		{name: "h2c app failing: h2c then HTTP/1.1", h2c: true, path: "/503", wantErr: "got status code: 503",
			wantReqs: []req{{"HTTP/2.0", ""}, {"HTTP/1.1", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			app := newApp(t, rec, tt.h2c)
			host, port := hostPort(t, app.Listener.Addr().String())
			probe, err := NewHTTPProbe(HTTPProbeOptions{Scheme: "http", Host: host, Port: port, Path: tt.path, Header: tt.header, AutoDetectHTTP2: !tt.autoOff})
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, probe.Probe(context.Background()), tt.wantErr)
			var got []req
			for _, s := range rec.seen() {
				got = append(got, req{s.proto, s.custom})
				if s.proto != "PRI" && s.ua != KubeProbeUserAgent {
					t.Errorf("User-Agent %q", s.ua)
				}
			}
			if len(got) != len(tt.wantReqs) {
				t.Fatalf("app saw %v, want %v", got, tt.wantReqs)
			}
			for i := range got {
				if got[i] != tt.wantReqs[i] {
					t.Errorf("app saw %v, want %v", got, tt.wantReqs)
					break
				}
			}
		})
	}
}

// TestHTTPProbeAutoDetectSendsPreface: an HTTP/1-only app sees the h2c
// connection preface first (the detection attempt), then an HTTP/1.1 GET.
func TestHTTPProbeAutoDetectSendsPreface(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	firstLines := make(chan string, 2)
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			firstLines <- line
			if i == 1 {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			c.Close()
		}
	}()
	host, port := hostPort(t, ln.Addr().String())
	probe, err := NewHTTPProbe(HTTPProbeOptions{Scheme: "HTTP", Host: host, Port: port, Path: "health", AutoDetectHTTP2: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Probe(context.Background()); err != nil {
		t.Errorf("probe: %v", err)
	}
	if l := <-firstLines; l != "PRI * HTTP/2.0" {
		t.Errorf("first connection began with %q, want the h2c preface", l)
	}
	if l := <-firstLines; l != "GET /health HTTP/1.1" {
		t.Errorf("second connection began with %q, want GET /health HTTP/1.1", l)
	}
}

func BenchmarkHTTPProbe(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer app.Close()
	_, p, _ := net.SplitHostPort(app.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	probe, err := NewHTTPProbe(HTTPProbeOptions{Scheme: "HTTP", Host: "127.0.0.1", Port: port, Path: "/"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := probe.Probe(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTCPProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := TCPProbe(context.Background(), ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
	}
}
