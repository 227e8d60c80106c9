package h1server

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"reflect"
	"testing"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// headSeeds are request heads, valid or not, for the fuzzer's corpus.
var headSeeds = []string{
	"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
	"POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
	"PUT /x HTTP/1.1\r\nhost: h\r\ncontent-length: 007\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"DELETE /x HTTP/1.1\r\nHOST: h\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
	"OPTIONS /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n",
	"PATCH /x HTTP/1.1\r\nHost: h\r\nConnection: foo close\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-Trim: \t v \t \r\nX-Empty:\r\nX_Under: u\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\nHost: h\n\n",
	"GET / HTTP/1.1\r\nHost: h\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n  folded\r\n\r\n",
	"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
	"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n",
	"get / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET  HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A : x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /a%2Fb/%7Ec?q=%zz#frag HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET //x/../y HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n\r",
	"GET / HT",
	"",
	"\r\n",
	"\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}

func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkParseHead(t, input)
	})
}

// checkParseHead checks parseHead's answer on input against net/http's
// server: a complete head must be one net/http's server accepts, and the
// request built from it must be the one net/http builds.
func checkParseHead(t *testing.T, input []byte) {
	t.Helper()
	buf := bytes.Clone(input)
	h, n, o := safeParseHead(t, buf)
	switch o {
	case needMore, generic:
		if n != 0 {
			t.Fatalf("outcome %v with n = %d", o, n)
		}
		return
	case complete:
	default:
		t.Fatalf("unknown outcome %v", o)
	}
	if n <= 0 || n > len(input) {
		t.Fatalf("complete with n = %d for %d bytes", n, len(input))
	}
	raw := input[:n]
	if !bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
		t.Fatalf("complete head %q does not end with an empty line", raw)
	}
	// The head must not alias the buffer, which the server reuses.
	for i := range buf {
		buf[i] = 'x'
	}

	// Exactly the head, whatever follows it.
	if h2, n2, o2 := safeParseHead(t, bytes.Clone(raw)); o2 != complete || n2 != n || !reflect.DeepEqual(h2, h) {
		t.Fatalf("head alone: outcome %v, n = %d (want complete, %d)", o2, n2, n)
	}
	// Every strict prefix of the head is incomplete, and each of its
	// complete lines is fine.
	for k := 0; k < n; k++ {
		if _, nk, ok := safeParseHead(t, bytes.Clone(raw[:k])); ok != needMore {
			t.Fatalf("prefix of %d bytes of the complete head %q: outcome %v, n = %d; want needMore", k, raw, ok, nk)
		}
	}

	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("complete head %q rejected by net/http: %v", raw, err)
	}

	// net/http's server rules beyond ReadRequest (which deletes Host from
	// the header map): exactly one valid Host, valid names and values,
	// HTTP/1.1 here.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	if _, err := tp.ReadLine(); err != nil {
		t.Fatal(err)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("complete head %q: textproto: %v", raw, err)
	}
	if hosts := mh["Host"]; len(hosts) != 1 || !httpguts.ValidHostHeader(hosts[0]) {
		t.Fatalf("complete head %q with Host lines %q", raw, hosts)
	}
	for k, vv := range mh {
		if !httpguts.ValidHeaderFieldName(k) {
			t.Fatalf("complete head %q with invalid header name %q", raw, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("complete head %q with invalid header value %q", raw, v)
			}
		}
	}
	if req.ProtoMajor != 1 || req.ProtoMinor != 1 || req.Proto != "HTTP/1.1" {
		t.Fatalf("complete head %q is %s", raw, req.Proto)
	}
	delete(req.Header, "Host")

	type view struct {
		Method, RequestURI, URL, Path, RawPath, RawQuery, Host string
		Header                                                 http.Header
		ContentLength                                          int64
		Close                                                  bool
		FirstConnection                                        string
	}
	want := view{
		req.Method, req.RequestURI, req.URL.String(), req.URL.Path, req.URL.RawPath, req.URL.RawQuery, req.Host,
		req.Header, req.ContentLength, req.Close, req.Header.Get("Connection"),
	}
	got := view{
		h.method, h.target, h.url.String(), h.url.Path, h.url.RawPath, h.url.RawQuery, h.host,
		h.header, h.contentLength, h.close, h.firstConnection,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("head %q:\nnet/http: %+v\nparseHead: %+v", raw, want, got)
	}
	if !reflect.DeepEqual(h.url, *req.URL) {
		t.Fatalf("head %q: URL %#v, net/http's %#v", raw, h.url, *req.URL)
	}
	// What the server answers with: net/http's wantsClose.
	if wantsClose := req.Close || hasToken(req.Header.Get("Connection"), "close"); wantsClose != (h.close || hasToken(h.firstConnection, "close")) {
		t.Fatalf("head %q: wantsClose differs", raw)
	}
}

// safeParseHead is parseHead, with a panic turned into a test failure.
func safeParseHead(t *testing.T, b []byte) (h head, n int, o outcome) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("parseHead(%q) panicked: %v", b, p)
		}
	}()
	return parseHead(b)
}

// parseHead must not panic on a request line without a target, which
// net/http's server answers with 400 Bad Request ("malformed HTTP
// request"): the fast path hands it to the generic server.
func TestParseHeadNoTarget(t *testing.T) {
	for _, in := range []string{
		"GET HTTP/1.1\r\n",
		"GET HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		if _, n, o := safeParseHead(t, []byte(in)); o != generic {
			t.Errorf("parseHead(%q): outcome %v, n = %d; want generic", in, o, n)
		}
	}
}

// The same on the wire: net/http answers 400, the fast path must too
// (not log a panic and close the connection without an answer).
func TestNoTargetAnswered(t *testing.T) {
	plain, lean, _ := servePair(t, behaviours())
	const raw = "GET HTTP/1.1\r\nHost: h\r\n\r\n"
	want := normalise(exchange(t, plain, raw))
	got := normalise(exchange(t, lean, raw))
	if got != want {
		t.Errorf("net/http sent\n%q\nthe fast path sent\n%q", want, got)
	}
}

func TestParseHeadSeeds(t *testing.T) {
	for _, s := range headSeeds {
		checkParseHead(t, []byte(s))
	}
}

func TestParseHead(t *testing.T) {
	type want struct {
		o               outcome
		n               int // -1: the whole input
		method, target  string
		host            string
		header          http.Header
		cl              int64
		close           bool
		firstConnection string
		path, rawQuery  string
	}
	tests := []struct {
		name, in string
		want     want
	}{
		{"get", "GET /a?b=c HTTP/1.1\r\nHost: h\r\n\r\n",
			want{o: complete, n: -1, method: "GET", target: "/a?b=c", host: "h", header: http.Header{}, path: "/a", rawQuery: "b=c"}},
		{"post-and-more", "POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Length: 5\r\n\r\nhelloGET",
			want{o: complete, n: len("POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Length: 5\r\n\r\n"), method: "POST", target: "/p", host: "h:1",
				header: http.Header{"Content-Length": {"5"}}, cl: 5, path: "/p"}},
		{"lower-and-mixed-case", "GET / HTTP/1.1\r\nhost: h\r\nuser-agent: ua\r\nx-fOO-bar: 1\r\nX-FOO-BAR:  2 \r\nx_y: z\r\n\r\n",
			want{o: complete, n: -1, method: "GET", target: "/", host: "h",
				header: http.Header{"User-Agent": {"ua"}, "X-Foo-Bar": {"1", "2"}, "X_y": {"z"}}, path: "/"}},
		{"connection-close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
			want{o: complete, n: -1, method: "GET", target: "/", host: "h",
				header: http.Header{"Connection": {"keep-alive, Close"}}, close: true, firstConnection: "keep-alive, Close", path: "/"}},
		{"connection-foo-close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo close\r\n\r\n",
			want{o: complete, n: -1, method: "GET", target: "/", host: "h",
				header: http.Header{"Connection": {"foo close"}}, firstConnection: "foo close", path: "/"}},
		{"connection-second-close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
			want{o: complete, n: -1, method: "GET", target: "/", host: "h",
				header: http.Header{"Connection": {"keep-alive", "close"}}, close: true, firstConnection: "keep-alive", path: "/"}},
		{"empty-host", "DELETE / HTTP/1.1\r\nHost:\r\n\r\n",
			want{o: complete, n: -1, method: "DELETE", target: "/", host: "", header: http.Header{}, path: "/"}},
		{"empty", "", want{o: needMore}},
		{"partial-line", "GET / HTTP/1.1", want{o: needMore}},
		{"partial-head", "GET / HTTP/1.1\r\nHost: h\r\n", want{o: needMore}},
		{"partial-cr", "GET / HTTP/1.1\r\nHost: h\r\n\r", want{o: needMore}},
		{"bare-lf-first", "GET / HTTP/1.1\n", want{o: generic}},
		{"bare-lf-header", "GET / HTTP/1.1\r\nHost: h\n", want{o: generic}},
		{"bad-line-before-end", "GET / HTTP/1.1\r\nBad Name: x\r\n", want{o: generic}},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", want{o: generic}},
		{"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", want{o: generic}},
		{"no-host", "GET / HTTP/1.1\r\n\r\n", want{o: generic}},
		{"two-lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", want{o: generic}},
		{"bad-length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n", want{o: generic}},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n", want{o: generic}},
		{"upgrade", "GET / HTTP/1.1\r\nupgrade: websocket\r\n", want{o: generic}},
		{"http10", "GET / HTTP/1.0\r\n", want{o: generic}},
		{"absolute", "GET http://h/ HTTP/1.1\r\n", want{o: generic}},
		{"unknown-method", "PROPFIND / HTTP/1.1\r\n", want{o: generic}},
		{"h2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want{o: generic}},
		{"crlf", "\r\n", want{o: generic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, o := parseHead([]byte(tt.in))
			w := tt.want
			if w.n == -1 {
				w.n = len(tt.in)
			}
			if o != w.o || n != w.n {
				t.Fatalf("outcome %v, n = %d; want %v, %d", o, n, w.o, w.n)
			}
			if o != complete {
				return
			}
			if h.method != w.method || h.target != w.target || h.host != w.host || h.contentLength != w.cl ||
				h.close != w.close || h.firstConnection != w.firstConnection {
				t.Errorf("got %+v", h)
			}
			if !reflect.DeepEqual(h.header, w.header) {
				t.Errorf("header %v, want %v", h.header, w.header)
			}
			if h.url.Path != w.path || h.url.RawQuery != w.rawQuery {
				t.Errorf("URL %#v", h.url)
			}
			checkParseHead(t, []byte(tt.in))
		})
	}
}

func TestParseHeadConnectionClose(t *testing.T) {
	// "foo close" is not the token close (Request.Close is false), but
	// net/http's server still closes after the response.
	h, _, o := parseHead([]byte("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo close\r\n\r\n"))
	if o != complete || h.close || h.firstConnection != "foo close" || !hasToken(h.firstConnection, "close") {
		t.Fatalf("outcome %v, close %v, first Connection %q", o, h.close, h.firstConnection)
	}
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"close", true}, {"CLOSE", true}, {"foo close", true}, {"foo,close", true}, {"\tclose\t", true},
		{"closed", false}, {"xclose", false}, {"clos", false}, {"", false}, {"keep-alive", false},
	} {
		if got := hasToken(tc.v, "close"); got != tc.want {
			t.Errorf("hasToken(%q, close) = %v", tc.v, got)
		}
	}
}

func TestParseHeadInterning(t *testing.T) {
	const in = "GET / HTTP/1.1\r\nHost: h\r\nuser-agent: a\r\nACCEPT-encoding: b\r\nx-request-id: c\r\nX-Custom-KEY: d\r\n\r\n"
	h, _, o := parseHead([]byte(in))
	if o != complete {
		t.Fatalf("outcome %v", o)
	}
	for _, k := range []string{"User-Agent", "Accept-Encoding", "X-Request-Id", "X-Custom-Key"} {
		if _, ok := h.header[k]; !ok {
			t.Errorf("no key %q in %v", k, h.header)
		}
	}
	// A common key, in any spelling, is the interned string.
	for _, spelling := range []string{"user-agent", "User-Agent", "USER-AGENT", "uSeR-aGeNt"} {
		k := canonicalKey([]byte(spelling))
		if k != "User-Agent" {
			t.Fatalf("canonicalKey(%q) = %q", spelling, k)
		}
		if unsafeData(k) != unsafeData(commonKeys["User-Agent"]) {
			t.Errorf("canonicalKey(%q) is not interned", spelling)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { canonicalKey([]byte("user-agent")) }); allocs != 0 {
		t.Errorf("canonicalKey of a common lower-case key: %v allocations", allocs)
	}
	if k := canonicalKey([]byte("x-custom-key")); k != http.CanonicalHeaderKey("x-custom-key") {
		t.Errorf("canonicalKey = %q", k)
	}
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }
