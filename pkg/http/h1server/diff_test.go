package h1server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Both servers sleep half a second before closing a connection whose
// request body was left unread (net/http's reset avoidance), past the
// tests' end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"),
		goleak.IgnoreAnyFunction("github.com/queue-proxy/queue-proxy/pkg/http/h1server.(*conn).closeWriteAndWait"))
}

// servePair starts h behind net/http's server and behind Server (with a
// generic server of its own), and returns their addresses.
func servePair(t *testing.T, h http.Handler) (plain, lean string, leanLog *strings.Builder) {
	t.Helper()
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	logs := new(strings.Builder)
	errLog := func() *lockedWriter { return &lockedWriter{mu: &mu, w: logs} }
	a := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ErrorLog: newLogger(io.Discard)}
	b := &Server{Handler: h, ReadHeaderTimeout: time.Minute, BackgroundReadDelay: time.Millisecond,
		Generic: &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ErrorLog: newLogger(errLog())}}
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { defer close(doneA); a.Serve(lnA) }()
	go func() { defer close(doneB); b.Serve(lnB) }()
	t.Cleanup(func() {
		a.Close()
		b.Close()
		<-doneA
		<-doneB
	})
	return lnA.Addr().String(), lnB.Addr().String(), logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// exchange sends raw on a new connection, half-closes it, and returns
// everything the server sent until it closed.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

var dateRE = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

func normalise(s string) string { return dateRE.ReplaceAllString(s, "Date: X\r") }

// dump writes what the handler saw of the request.
func dump(w io.Writer, r *http.Request) {
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "%s %q %q path=%q raw=%q query=%q host=%q proto=%s %d.%d close=%v cl=%d te=%v\n",
		r.Method, r.RequestURI, r.URL.String(), r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Proto,
		r.ProtoMajor, r.ProtoMinor, r.Close, r.ContentLength, r.TransferEncoding)
	for _, k := range keys {
		fmt.Fprintf(w, "%s=%q\n", k, r.Header[k])
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	_, isSrv := r.Context().Value(http.ServerContextKey).(*http.Server)
	_, isAddr := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	b, err := io.ReadAll(r.Body)
	fmt.Fprintf(w, "remote=%s srv=%v laddr=%v body=%q err=%v trailer=%v\n", host, isSrv, isAddr, b, err, r.Trailer)
}

// A request-building handler per behaviour; the path picks it.
func behaviours() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/dump", func(w http.ResponseWriter, r *http.Request) { dump(w, r) })
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><body>x</body></html>") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte(strings.Repeat("a", 3000)))
	})
	mux.HandleFunc("/sizes", func(w http.ResponseWriter, r *http.Request) {
		for _, n := range []int{1000, 1048, 1, 2047, 4096, 10, 0, 5000} {
			w.Write([]byte(strings.Repeat("b", n)))
		}
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2048)) })
	mux.HandleFunc("/exact1", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2049)) })
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		io.WriteString(w, "two")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "three")
	})
	mux.HandleFunc("/flushfirst", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "1")
		w.(http.Flusher).Flush()
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(204)
		_, err := io.WriteString(w, "abc")
		w.Header().Set("X-Late", err.Error())
	})
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(304)
	})
	mux.HandleFunc("/cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "12345")
		_, err := io.WriteString(w, "6")
		if err != http.ErrContentLength {
			panic("want ErrContentLength")
		}
	})
	mux.HandleFunc("/clshort", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "12345")
	})
	mux.HandleFunc("/clbad", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "abc")
		io.WriteString(w, "12345")
	})
	mux.HandleFunc("/te-identity", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "identity")
		io.WriteString(w, "stream")
		w.(http.Flusher).Flush()
	})
	mux.HandleFunc("/te-chunked-cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("Content-Length", "6")
		io.WriteString(w, "stream")
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum, X-Other")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	mux.HandleFunc("/1xx", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</s.css>; rel=preload")
		w.Header().Set("Content-Length", "1")
		w.WriteHeader(103)
		w.WriteHeader(103)
		w.Header().Del("Content-Length")
		w.WriteHeader(201)
		io.WriteString(w, "created")
	})
	mux.HandleFunc("/odd-status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) })
	mux.HandleFunc("/superfluous", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(202)
		w.WriteHeader(500)
	})
	mux.HandleFunc("/conn-close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Zeta"] = []string{"1", " 2 "}
		h["alpha"] = []string{"lower"}
		h["Bad Name"] = []string{"dropped"}
		h["Multi"] = []string{"a\nb", "c\r\nd"}
		h["Empty"] = []string{""}
		h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Content-Encoding", "gzip")
		io.WriteString(w, "not sniffed")
	})
	mux.HandleFunc("/mutate-after", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Before", "1")
		w.WriteHeader(200)
		h.Set("X-After", "2")
		w.Header().Set("X-After2", "3")
		io.WriteString(w, "x")
	})
	mux.HandleFunc("/noread", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ignored body") })
	mux.HandleFunc("/halfread", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 3)
		io.ReadFull(r.Body, b)
		r.Body.Close()
		_, err := r.Body.Read(b)
		fmt.Fprintf(w, "%q %v", b, err)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer c.Close()
		n := brw.Reader.Buffered()
		brw.WriteString(fmt.Sprintf("RAW %d\n", n))
		brw.Flush()
	})
	mux.HandleFunc("/closenotify", func(w http.ResponseWriter, r *http.Request) {
		_ = w.(http.CloseNotifier).CloseNotify()
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/head-cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
	})
	return mux
}

func TestDifferential(t *testing.T) {
	h := behaviours()
	plain, lean, _ := servePair(t, h)
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n" }
	bigBody := strings.Repeat("z", 300<<10)
	cases := map[string]string{
		"dump":            "GET /dump?a=1&b=%20c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\naccept-encoding: gzip\r\nX-Dup: 1\r\nx-dup: 2\r\nX-Trim:  \t v \t \r\nX-Empty:\r\nX_Under: u\r\nConnection: keep-alive\r\n\r\n",
		"dump-escaped":    "GET /dump/a%2Fb/%7Ec?q=%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"dump-dotdot":     "GET //dump/../x HTTP/1.1\r\nHost: h\r\n\r\n",
		"dump-post":       "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		"dump-cl0":        "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"dump-cl-lead0":   "PUT /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc",
		"dump-close":      "GET /dump HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n" + get("/hello"),
		"dump-close2":     "GET /dump HTTP/1.1\r\nHost: h\r\nConnection: foo close\r\n\r\n" + get("/hello"),
		"dump-methods":    "DELETE /dump HTTP/1.1\r\nHost: h\r\n\r\nOPTIONS /dump HTTP/1.1\r\nHost: h\r\n\r\nPATCH /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
		"hello":           get("/hello"),
		"empty":           get("/empty"),
		"html":            get("/html"),
		"big":             get("/big"),
		"sizes":           get("/sizes"),
		"exact":           get("/exact"),
		"exact1":          get("/exact1"),
		"flush":           get("/flush"),
		"flushfirst":      get("/flushfirst"),
		"204":             get("/204"),
		"304":             get("/304"),
		"cl":              get("/cl") + get("/hello"),
		"clshort":         get("/clshort") + get("/hello"),
		"clbad":           get("/clbad"),
		"te-identity":     get("/te-identity") + get("/hello"),
		"te-chunked-cl":   get("/te-chunked-cl"),
		"trailers":        get("/trailers"),
		"1xx":             get("/1xx"),
		"odd-status":      get("/odd-status"),
		"superfluous":     get("/superfluous"),
		"conn-close":      get("/conn-close") + get("/hello"),
		"headers":         get("/headers"),
		"mutate-after":    get("/mutate-after"),
		"not-found":       get("/nope"),
		"head":            "HEAD /hello HTTP/1.1\r\nHost: h\r\n\r\n" + get("/hello"),
		"head-empty":      "HEAD /empty HTTP/1.1\r\nHost: h\r\n\r\n",
		"head-cl":         "HEAD /head-cl HTTP/1.1\r\nHost: h\r\n\r\n" + get("/hello"),
		"head-big":        "HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n" + get("/hello"),
		"noread":          "POST /noread HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789" + get("/hello"),
		"noread-big":      "POST /noread HTTP/1.1\r\nHost: h\r\nContent-Length: " + fmt.Sprint(len(bigBody)) + "\r\n\r\n" + bigBody + get("/hello"),
		"halfread":        "POST /halfread HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789" + get("/hello"),
		"echo":            "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("e", 5000) + get("/hello"),
		"short-body":      "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\nonly this",
		"post-crlf":       "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab\r\n" + get("/hello"),
		"pipelined":       get("/hello") + get("/dump") + get("/big") + get("/hello"),
		"panic":           get("/panic") + get("/hello"),
		"hijack":          get("/hijack") + "extra",
		"closenotify":     get("/closenotify"),
		"generic-chunked": "POST /dump HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + get("/hello"),
		"generic-expect":  "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
		"generic-expect2": "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: foo\r\n\r\nabc",
		"generic-10":      "GET /dump HTTP/1.0\r\nHost: h\r\n\r\n",
		"generic-10ka":    "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n",
		"generic-abs":     "GET http://other/dump HTTP/1.1\r\nHost: h\r\n\r\n",
		"generic-star":    "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"generic-trace":   "TRACE /dump HTTP/1.1\r\nHost: h\r\n\r\n",
		"generic-pragma":  "GET /dump HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
		"generic-upgrade": "GET /dump HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"generic-lf":      "GET /dump HTTP/1.1\nHost: h\n\n",
		"generic-mixed":   get("/hello") + "GET /dump HTTP/1.1\nHost: h\n\n",
		"bad-nohost":      "GET /dump HTTP/1.1\r\n\r\n",
		"bad-2host":       "GET /dump HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"bad-host":        "GET /dump HTTP/1.1\r\nHost: a b\r\n\r\n",
		"bad-2cl":         "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"bad-cl":          "POST /dump HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
		"bad-space-name":  "GET /dump HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
		"bad-colon-space": "GET /dump HTTP/1.1\r\nHost: h\r\nX-A : x\r\n\r\n",
		"bad-ctl":         "GET /dump HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
		"bad-fold":        "GET /dump HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  b\r\n\r\n",
		"bad-line":        "garbage\r\n\r\n",
		"bad-version":     "GET /dump HTTP/1.2\r\nHost: h\r\n\r\n",
		"bad-target":      "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
		"bad-first-line":  "GET /dump HTTP/1.1 x\r\n",
		"obs-text":        "GET /dump HTTP/1.1\r\nHost: h\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
		"large-head":      "GET /dump HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("x", 5000) + "\r\n\r\n",
		"empty-conn":      "",
		"partial":         "GET /dump HT",
		"crlf-only":       "\r\n\r\n",
		"short-bad-line":  get("/hello") + "BAD LINE\r\n\r\n",
		"short-bad-lf":    get("/hello") + "X\n\n",
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		raw := cases[name]
		t.Run(name, func(t *testing.T) {
			want := normalise(exchange(t, plain, raw))
			got := normalise(exchange(t, lean, raw))
			if got != want {
				t.Errorf("net/http sent\n%q\nthe fast path sent\n%q", want, got)
			}
		})
	}
}
