package upstream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/upstream"
)

// requestCase is one inbound request, sent as raw bytes to a real server,
// then handled by both the ReverseProxy and the lean writer.
type requestCase struct {
	name string
	head []string // request line and header lines, without CRLFs
	body string   // raw body bytes, framed as the head says
	// mutate, when set, changes the request as the server parsed it, before
	// either path sees it (what a raw client cannot send).
	mutate func(r *http.Request)
	// pruned, when set, replaces RevisionHeaders as the pruned headers.
	pruned []string
	// ineligible is Eligible's expected answer inverted.
	ineligible bool
	// fails: net/http's Transport refuses the request (502), Write errors.
	fails bool
}

func (c requestCase) prunedHeaders() []string {
	if c.pruned != nil {
		return c.pruned
	}
	return pkghttp.RevisionHeaders
}

func (c requestCase) raw() string {
	return strings.Join(c.head, "\r\n") + "\r\n\r\n" + c.body
}

// chunk frames s as one chunk.
func chunk(s string) string {
	return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n"
}

func requestCases() []requestCase {
	long := strings.Repeat("v", 16<<10)
	big := strings.Repeat("0123456789abcdef", 100<<10/16) // 100 KiB
	return []requestCase{
		{name: "get minimal", head: []string{"GET / HTTP/1.1", "Host: example.com"}},
		{name: "get typical", head: []string{
			"GET /api/v1/items?id=42&x=y HTTP/1.1", "Host: hello.default.example.com",
			"User-Agent: curl/8.5.0", "Accept: */*", "Accept-Language: en-US,en;q=0.9",
			"Cookie: a=1; b=2", "X-Request-Id: 7f0c", "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}},
		// Methods and bodies.
		{name: "post content-length", head: []string{"POST /f HTTP/1.1", "Host: h", "Content-Type: text/plain", "Content-Length: 11"}, body: "hello world"},
		{name: "put content-length", head: []string{"PUT /f HTTP/1.1", "Host: h", "Content-Length: 3"}, body: "abc"},
		{name: "post no body", head: []string{"POST / HTTP/1.1", "Host: h"}},
		{name: "post content-length 0", head: []string{"POST / HTTP/1.1", "Host: h", "Content-Length: 0"}},
		{name: "patch no body", head: []string{"PATCH / HTTP/1.1", "Host: h"}},
		{name: "put no body", head: []string{"PUT / HTTP/1.1", "Host: h"}},
		{name: "delete no body", head: []string{"DELETE /x HTTP/1.1", "Host: h"}},
		{name: "delete content-length 0", head: []string{"DELETE /x HTTP/1.1", "Host: h", "Content-Length: 0"}},
		{name: "options no body", head: []string{"OPTIONS /x HTTP/1.1", "Host: h"}},
		{name: "options star", head: []string{"OPTIONS * HTTP/1.1", "Host: h"}},
		{name: "head", head: []string{"HEAD /x HTTP/1.1", "Host: h", "Accept: */*"}},
		{name: "custom method", head: []string{"PROPFIND /d HTTP/1.1", "Host: h", "Depth: 1"}},
		{name: "get content-length", head: []string{"GET / HTTP/1.1", "Host: h", "Content-Length: 5"}, body: "12345"},
		{name: "options content-length", head: []string{"OPTIONS / HTTP/1.1", "Host: h", "Content-Length: 2"}, body: "{}"},
		{name: "post chunked", head: []string{"POST /c HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"},
			body: chunk("hello") + chunk(" world") + "0\r\n\r\n"},
		{name: "post empty chunked", head: []string{"POST /c HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, body: "0\r\n\r\n"},
		{name: "get chunked", head: []string{"GET /c HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, body: chunk("x") + "0\r\n\r\n"},
		{name: "head empty chunked", head: []string{"HEAD /c HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"}, body: "0\r\n\r\n"},
		{name: "put chunked large", head: []string{"PUT /c HTTP/1.1", "Host: h", "Transfer-Encoding: chunked"},
			body: chunk(big[:20000]) + chunk(big[:40000]) + chunk(big[:3]) + "0\r\n\r\n"},
		{name: "post content-length large", head: []string{"POST /c HTTP/1.1", "Host: h", "Content-Length: " + strconv.Itoa(len(big))}, body: big},
		{name: "http/1.0 content-length", head: []string{"POST /old HTTP/1.0", "Host: h", "Content-Length: 2"}, body: "ok"},
		{name: "http/1.0 without host", head: []string{"GET /old HTTP/1.0"}},
		{name: "content-length and type kept in place", head: []string{"POST / HTTP/1.1", "Host: h", "Content-Type: a/b", "Content-Length: 1", "Accept: x", "Zzz: z", "Aaa: a"}, body: "!"},
		// Hop-by-hop headers.
		{name: "hop-by-hop", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: keep-alive", "Proxy-Connection: keep-alive",
			"Keep-Alive: timeout=5", "Proxy-Authorization: Basic eA==", "Proxy-Authenticate: Basic", "X-Kept: 1"}},
		{name: "connection close", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: close"}},
		{name: "upgrade without connection upgrade", head: []string{"GET / HTTP/1.1", "Host: h", "Upgrade: websocket"}, ineligible: true},
		{name: "connection lists custom", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: X-Foo, x-bar ,keep-alive",
			"X-Foo: 1", "X-Bar: 2", "X-Baz: 3", "Keep-Alive: 1"}},
		{name: "connection lists user-agent and xff", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: User-Agent, X-Forwarded-For",
			"User-Agent: ua", "X-Forwarded-For: 1.2.3.4"}},
		{name: "connection repeated", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: x-a", "Connection: X-B,,", "X-A: a", "X-B: b", "X-C: c"}},
		{name: "connection odd tokens", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: ,, x-a , ,x_b,X-C;q=1", "X-A: a", "X_b: b", "X-C: c"}},
		{name: "connection lists te and pruned", head: []string{"GET / HTTP/1.1", "Host: h", "Connection: te, knative-serving-revision", "Te: trailers",
			"Knative-Serving-Revision: r"}},
		// Te.
		{name: "te trailers", head: []string{"GET / HTTP/1.1", "Host: h", "Te: trailers"}},
		{name: "te gzip", head: []string{"GET / HTTP/1.1", "Host: h", "Te: gzip"}},
		{name: "te list", head: []string{"GET / HTTP/1.1", "Host: h", "TE: gzip , Trailers"}},
		{name: "te repeated", head: []string{"GET / HTTP/1.1", "Host: h", "Te: gzip", "te: trailers", "Tf: after", "Td: before"}},
		// X-Forwarded-For.
		{name: "xff present", head: []string{"GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 203.0.113.7"}},
		{name: "xff multiple", head: []string{"GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 203.0.113.7, 10.0.0.1", "X-Forwarded-For: 10.0.0.2"}},
		{name: "xff empty", head: []string{"GET / HTTP/1.1", "Host: h", "X-Forwarded-For: "}},
		{name: "xff nil", head: []string{"GET / HTTP/1.1", "Host: h", "X-Forwarded-For: 1.1.1.1"},
			mutate: func(r *http.Request) { r.Header["X-Forwarded-For"] = nil }},
		{name: "xff empty slice", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.Header["X-Forwarded-For"] = []string{} }},
		{name: "xff padded", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.Header["X-Forwarded-For"] = []string{" \t", "", " a "} }},
		{name: "xff trimmed across parts", head: []string{"GET / HTTP/1.1", "Host: h", "X-Forwarded-For:   x  "},
			mutate: func(r *http.Request) { r.RemoteAddr = ":1" }}, // clientIP ""
		{name: "client ip padded", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.RemoteAddr = "[ 203.0.113.9\t]:1" }},
		{name: "client ip invalid", head: []string{"GET / HTTP/1.1", "Host: h"}, fails: true,
			mutate: func(r *http.Request) { r.RemoteAddr = "[a\nb]:1" }},
		{name: "client ip invalid, xff nil", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.RemoteAddr, r.Header["X-Forwarded-For"] = "[a\nb]:1", nil }},
		{name: "xff with other forwarding headers", head: []string{"GET / HTTP/1.1", "Host: h", "Forwarded: for=192.0.2.60;proto=http",
			"X-Forwarded-Proto: https", "X-Forwarded-Host: x", "K-Proxy-Request: activator", "K-Original-Host: o"}},
		// User-Agent.
		{name: "user-agent present", head: []string{"GET / HTTP/1.1", "Host: h", "User-Agent: Mozilla/5.0 (X11)"}},
		{name: "user-agent empty", head: []string{"GET / HTTP/1.1", "Host: h", "User-Agent: "}},
		{name: "user-agent repeated", head: []string{"GET / HTTP/1.1", "Host: h", "User-Agent: first", "User-Agent: second"}},
		{name: "user-agent nil", head: []string{"GET / HTTP/1.1", "Host: h", "User-Agent: x"},
			mutate: func(r *http.Request) { r.Header["User-Agent"] = nil }},
		{name: "user-agent padded", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.Header["User-Agent"] = []string{"\t ua \t"} }},
		// Pruned and repeated headers.
		{name: "pruned", head: []string{"GET / HTTP/1.1", "Host: h", "Knative-Serving-Revision: rev-1",
			"knative-serving-namespace: ns", "Knative-Serving-Other: kept"}},
		{name: "repeated headers", head: []string{"GET / HTTP/1.1", "Host: h", "Accept: b", "Cookie: c=1", "Accept: a", "Cookie: c=2", "accept: c"}},
		{name: "long header value", head: []string{"GET / HTTP/1.1", "Host: h", "X-Long: " + long, "X-After: 1"}},
		{name: "many headers", head: func() []string {
			h := []string{"GET / HTTP/1.1", "Host: h"}
			for i := range 40 {
				h = append(h, "X-H-"+strconv.Itoa(40-i)+": "+strconv.Itoa(i))
			}
			return h
		}()},
		{name: "non-canonical keys", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) {
				r.Header["x-lower"] = []string{"v"}
				r.Header["te"] = []string{"trailers"}
				r.Header["connection"] = []string{"x-lower"}
			}},
		{name: "padded and nil values", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) {
				r.Header["X-Pad"] = []string{"  a b\t", "\t"}
				r.Header["X-Nil"] = nil
				r.Header["X-Empty"] = []string{}
			}},
		{name: "host and content-length in map", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) {
				r.Header["Host"] = []string{"other"}
				r.Header["Content-Length"] = []string{"7"}
			}},
		// Host.
		{name: "host with port", head: []string{"GET / HTTP/1.1", "Host: example.com:8080"}},
		{name: "host ipv6", head: []string{"GET / HTTP/1.1", "Host: [::1]:8080"}},
		{name: "host ipv6 zone", head: []string{"GET / HTTP/1.1", "Host: [fe80::1%25eth0]:8080"}},
		{name: "host empty", head: []string{"GET / HTTP/1.1", "Host: "}},
		{name: "host invalid", head: []string{"GET / HTTP/1.1", "Host: h"}, mutate: func(r *http.Request) { r.Host = "bad host/x" }},
		{name: "host unicode", head: []string{"GET / HTTP/1.1", "Host: h"}, mutate: func(r *http.Request) { r.Host = "bücher.example:80" }},
		// Request URIs.
		{name: "query", head: []string{"GET /search?q=a+b&x=%20&y HTTP/1.1", "Host: h"}},
		{name: "force query", head: []string{"GET /p? HTTP/1.1", "Host: h"}},
		{name: "escaped path", head: []string{"GET /a%2Fb/c%20d HTTP/1.1", "Host: h"}},
		{name: "utf8 escaped path", head: []string{"GET /caf%C3%A9/%e2%82%ac HTTP/1.1", "Host: h"}},
		{name: "double slashes", head: []string{"GET //x//y/../z HTTP/1.1", "Host: h"}},
		{name: "absolute form", head: []string{"GET http://other.example:81/x?y=1 HTTP/1.1", "Host: example.com"}},
		{name: "path with semicolon and query", head: []string{"GET /a;b=c?x=1;y=2 HTTP/1.1", "Host: h"}},
		// Other pruned headers.
		{name: "pruned connection", pruned: []string{"Connection", "X-Forwarded-For", "User-Agent", "Te"},
			head: []string{"GET / HTTP/1.1", "Host: h", "Connection: X-A", "X-A: a", "X-Forwarded-For: 1.2.3.4", "User-Agent: ua", "Te: trailers"}},
		{name: "pruned content-length", pruned: []string{"Content-Length", "Host"},
			head: []string{"POST / HTTP/1.1", "Host: h", "Content-Length: 2"}, body: "ok"},
		// Refused by net/http's Transport.
		{name: "invalid value", head: []string{"GET / HTTP/1.1", "Host: h"}, fails: true,
			mutate: func(r *http.Request) { r.Header["X-Bad"] = []string{"a\r\nb"} }},
		{name: "invalid name", head: []string{"GET / HTTP/1.1", "Host: h"}, fails: true,
			mutate: func(r *http.Request) { r.Header["Bad Name"] = nil }},
		{name: "invalid user-agent", head: []string{"GET / HTTP/1.1", "Host: h"}, fails: true,
			mutate: func(r *http.Request) { r.Header["User-Agent"] = []string{"ok", "\x00"} }},
		{name: "invalid name listed in connection", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) {
				r.Header["Bad Key"], r.Header["Connection"] = []string{"v"}, []string{"Bad Key"}
			}},
		{name: "invalid name listed in other case", head: []string{"GET / HTTP/1.1", "Host: h"}, fails: true,
			mutate: func(r *http.Request) {
				r.Header["Bad Key"], r.Header["Connection"] = []string{"v"}, []string{"bad key"}
			}},
		{name: "invalid but pruned", head: []string{"GET / HTTP/1.1", "Host: h"},
			mutate: func(r *http.Request) { r.Header["Knative-Serving-Revision"] = []string{"\x00"} }},
	}
}

// TestRequestHeadDifferential sends each case through a real server twice:
// once to the header-pruning ReverseProxy with the proxy transport, whose
// upstream records the bytes it receives, and once to a handler that writes
// the same request with RequestHead.Write and WriteBody. The heads must be
// identical; the bodies too, decoded when chunked.
func TestRequestHeadDifferential(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			target, received := startRecorder(t)
			viaProxy, proxyStatus := sendViaProxy(t, tc, target, received)
			lean := sendViaLean(t, tc, target)

			if lean.eligible == tc.ineligible {
				t.Errorf("Eligible = %v, want %v", lean.eligible, !tc.ineligible)
			}
			if lean.headerChanged {
				t.Error("Write changed r.Header")
			}
			if tc.fails {
				if proxyStatus != http.StatusBadGateway {
					t.Errorf("proxy status = %d, want %d", proxyStatus, http.StatusBadGateway)
				}
				if lean.err == nil || lean.wrote != 0 {
					t.Errorf("Write = (err %v, %d bytes written), want an error and nothing written", lean.err, lean.wrote)
				}
				return
			}
			if lean.err != nil {
				t.Fatalf("Write or WriteBody: %v", lean.err)
			}
			compareWire(t, viaProxy, lean.raw)
		})
	}
}

// compareWire compares two requests on the wire: heads byte for byte,
// bodies decoded when chunked.
func compareWire(t *testing.T, want, got []byte) {
	t.Helper()
	wantHead, wantBody, _ := bytes.Cut(want, []byte("\r\n\r\n"))
	gotHead, gotBody, _ := bytes.Cut(got, []byte("\r\n\r\n"))
	if !bytes.Equal(wantHead, gotHead) {
		t.Fatalf("head differs\nnet/http:\n%s\nlean:\n%s", wantHead, gotHead)
	}
	if !bytes.Contains(wantHead, []byte("\r\nTransfer-Encoding: chunked")) {
		if !bytes.Equal(wantBody, gotBody) {
			t.Fatalf("body differs: net/http %d bytes, lean %d bytes", len(wantBody), len(gotBody))
		}
		return
	}
	for _, b := range [][]byte{wantBody, gotBody} {
		if !bytes.HasSuffix(b, []byte("\r\n0\r\n\r\n")) && !bytes.Equal(b, []byte("0\r\n\r\n")) {
			t.Fatalf("chunked body does not end with the last chunk and no trailers: %q", b)
		}
	}
	wantData, err1 := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(wantBody)))
	gotData, err2 := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(gotBody)))
	if err1 != nil || err2 != nil {
		t.Fatalf("decoding chunked bodies: net/http %v, lean %v", err1, err2)
	}
	if !bytes.Equal(wantData, gotData) {
		t.Fatalf("decoded body differs: net/http %d bytes, lean %d bytes", len(wantData), len(gotData))
	}
	if !bytes.Equal(wantBody, gotBody) {
		t.Logf("chunk boundaries differ (decoded bytes equal): net/http %d raw bytes, lean %d", len(wantBody), len(gotBody))
	}
}

// sendViaProxy sends tc to a server whose handler is the header-pruning
// ReverseProxy to target and returns the bytes target received (nil if
// none) and the status the client got.
func sendViaProxy(t *testing.T, tc requestCase, target string, received <-chan []byte) ([]byte, int) {
	proxy := pkghttp.NewHeaderPruningReverseProxy(target, pkghttp.NoHostOverride, tc.prunedHeaders(), false)
	tr := pkghttp.NewProxyTransport(0)
	t.Cleanup(tr.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	proxy.Transport = tr
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	srv := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		if tc.mutate != nil {
			tc.mutate(r)
		}
		proxy.ServeHTTP(w, r)
	})

	status := sendRaw(t, srv.Listener.Addr().String(), tc.raw())
	select {
	case raw := <-received:
		return raw, status
	default: // the upstream was never reached
		return nil, status
	}
}

// leanResult is what the lean handler saw and wrote.
type leanResult struct {
	eligible      bool
	raw           []byte
	wrote         int // bytes buffered when Write failed
	err           error
	headerChanged bool
}

// sendViaLean sends tc to a server whose handler writes the request with
// RequestHead.Write and WriteBody into a buffer. target is the proxy's: the
// Host sent when the request has none.
func sendViaLean(t *testing.T, tc requestCase, target string) leanResult {
	results := make(chan leanResult, 1)
	head := &upstream.RequestHead{Pruned: tc.prunedHeaders(), Target: target}
	srv := startServer(t, func(_ http.ResponseWriter, r *http.Request) {
		if tc.mutate != nil {
			tc.mutate(r)
		}
		res := leanResult{eligible: upstream.Eligible(r)}
		before := r.Header.Clone()
		clientIP, _, _ := net.SplitHostPort(r.RemoteAddr)
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		chunked, err := head.Write(bw, r, clientIP)
		if err != nil {
			res.wrote = bw.Buffered() + out.Len()
		} else if err = upstream.WriteBody(bw, r.Body, chunked, make([]byte, 32<<10)); err == nil {
			err = bw.Flush()
		}
		res.raw, res.err = out.Bytes(), err
		res.headerChanged = !reflect.DeepEqual(before, r.Header)
		results <- res
	})
	sendRaw(t, srv.Listener.Addr().String(), tc.raw())
	select {
	case res := <-results: // sent before the response
		return res
	default:
		t.Fatal("the handler was not called")
		return leanResult{}
	}
}

// startServer starts a test server with handler, which also gets
// "OPTIONS *" requests.
func startServer(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.DisableGeneralOptionsHandler = true
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// sendRaw writes raw to addr on a new connection and returns the
// response's status after reading its body.
func sendRaw(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// startRecorder starts a raw TCP upstream that reads one request per
// connection, sends its exact bytes on the returned channel, answers 200
// and closes the connection.
func startRecorder(t *testing.T) (string, <-chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	received := make(chan []byte, 8)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			raw, err := readRawRequest(bufio.NewReader(conn))
			if err == nil {
				received <- raw
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
			conn.Close()
		}
	}()
	return ln.Addr().String(), received
}

// readRawRequest reads one request and returns its bytes as received: the
// head, then a Content-Length or chunked body.
func readRawRequest(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	length, chunked := 0, false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		if line == "\r\n" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		switch strings.ToLower(name) {
		case "content-length":
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		case "transfer-encoding":
			chunked = strings.TrimSpace(value) == "chunked"
		}
	}
	if !chunked {
		body := make([]byte, length)
		_, err := io.ReadFull(br, body)
		return append(raw, body...), err
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		size, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			return nil, err
		}
		if size == 0 { // trailers, then the empty line
			for line != "\r\n" {
				if line, err = br.ReadString('\n'); err != nil {
					return nil, err
				}
				raw = append(raw, line...)
			}
			return raw, nil
		}
		data := make([]byte, size+2)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		raw = append(raw, data...)
	}
}

// newRequest returns an inbound-like request: HTTP/1.1, a RemoteAddr, no
// body.
func newRequest(method, target string, header http.Header) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	if header == nil {
		header = http.Header{}
	}
	return &http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Body: http.NoBody, Host: "example.com", RemoteAddr: "192.0.2.1:1234",
	}
}

func TestEligible(t *testing.T) {
	body := func() io.ReadCloser { return io.NopCloser(strings.NewReader("data")) }
	tests := []struct {
		name string
		edit func(r *http.Request)
		want bool
	}{
		{"plain get", func(*http.Request) {}, true},
		{"http/1.0", func(r *http.Request) { r.ProtoMinor = 0 }, true},
		{"nil header", func(r *http.Request) { r.Header = nil }, true},
		{"http/2", func(r *http.Request) { r.ProtoMajor, r.ProtoMinor = 2, 0 }, false},
		{"connect", func(r *http.Request) { r.Method = http.MethodConnect }, false},
		{"nil url", func(r *http.Request) { r.URL = nil }, false},
		{"opaque url", func(r *http.Request) { r.URL.Opaque = "x" }, false},
		{"parsed form", func(r *http.Request) { r.Form = url.Values{} }, false},
		{"upgrade header", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }, false},
		{"connection upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive, Upgrade") }, false},
		{"connection keep-alive", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, true},
		{"expect 100-continue", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, false},
		{"trailer header", func(r *http.Request) { r.Header.Set("Trailer", "X-T") }, false},
		{"request trailers", func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }, false},
		{"empty trailer map", func(r *http.Request) { r.Trailer = http.Header{} }, true},
		{"content-length body", func(r *http.Request) { r.Method, r.ContentLength, r.Body = "POST", 4, body() }, true},
		{"chunked body", func(r *http.Request) {
			r.Method, r.ContentLength, r.Body, r.TransferEncoding = "POST", -1, body(), []string{"chunked"}
		}, true},
		{"chunked get", func(r *http.Request) { r.ContentLength, r.Body, r.TransferEncoding = -1, body(), []string{"chunked"} }, true},
		{"gzip transfer-encoding", func(r *http.Request) {
			r.Method, r.ContentLength, r.Body, r.TransferEncoding = "POST", -1, body(), []string{"gzip", "chunked"}
		}, false},
		{"unknown length post", func(r *http.Request) { r.Method, r.ContentLength, r.Body = "POST", -1, body() }, true},
		{"unknown length get", func(r *http.Request) { r.ContentLength, r.Body = -1, body() }, false},
		{"unknown length delete", func(r *http.Request) { r.Method, r.ContentLength, r.Body = "DELETE", -1, body() }, false},
		{"content-length without body", func(r *http.Request) { r.Method, r.ContentLength, r.Body = "POST", 4, nil }, false},
		{"content-length with NoBody", func(r *http.Request) { r.Method, r.ContentLength = "POST", 4 }, false},
		{"body with content-length 0", func(r *http.Request) { r.Method, r.Body = "POST", body() }, false},
		{"nil body", func(r *http.Request) { r.Body = nil }, true},
		{"remote addr without port", func(r *http.Request) { r.RemoteAddr = "192.0.2.1" }, false},
		{"empty remote addr", func(r *http.Request) { r.RemoteAddr = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("GET", "/", nil)
			tt.edit(r)
			if got := upstream.Eligible(r); got != tt.want {
				t.Errorf("Eligible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequestHeadWriteErrors(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(r *http.Request)
		clientIP string
	}{
		{"invalid method", func(r *http.Request) { r.Method = "G T" }, "1.2.3.4"},
		{"invalid header name", func(r *http.Request) { r.Header["X:Y"] = []string{"v"} }, "1.2.3.4"},
		{"invalid header value", func(r *http.Request) { r.Header["X"] = []string{"a\x7fb"} }, "1.2.3.4"},
		{"invalid client ip", func(*http.Request) {}, "1.2.3.4\n"},
		{"control byte in query", func(r *http.Request) { r.URL.RawQuery = "a=\x01" }, "1.2.3.4"},
		{"opaque url", func(r *http.Request) { r.URL.Opaque = "x" }, "1.2.3.4"},
		{"nil url", func(r *http.Request) { r.URL = nil }, "1.2.3.4"},
		{"connect", func(r *http.Request) { r.Method = http.MethodConnect }, "1.2.3.4"},
		{"content-length without body", func(r *http.Request) { r.ContentLength, r.Body = 3, nil }, "1.2.3.4"},
		{"gzip transfer-encoding", func(r *http.Request) {
			r.Method, r.ContentLength, r.Body, r.TransferEncoding = "POST", -1, io.NopCloser(strings.NewReader("x")), []string{"gzip"}
		}, "1.2.3.4"},
		{"unknown length get", func(r *http.Request) { r.ContentLength, r.Body = -1, io.NopCloser(strings.NewReader("x")) }, "1.2.3.4"},
	}
	head := &upstream.RequestHead{Pruned: pkghttp.RevisionHeaders}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("GET", "/", nil)
			tt.edit(r)
			bw := bufio.NewWriter(io.Discard)
			if _, err := head.Write(bw, r, tt.clientIP); err == nil {
				t.Error("Write succeeded, want an error")
			}
			if bw.Buffered() != 0 {
				t.Errorf("Write buffered %d bytes before failing, want 0", bw.Buffered())
			}
		})
	}
}

func TestRequestHeadWriteBufioError(t *testing.T) {
	head := &upstream.RequestHead{}
	bw := bufio.NewWriterSize(errWriter{}, 16)
	if _, err := head.Write(bw, newRequest("GET", "/a/long/enough/path", nil), "1.2.3.4"); err == nil {
		t.Error("Write succeeded on a failing writer")
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

// writeLog records each write that reaches it.
type writeLog struct{ writes []string }

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestWriteBody(t *testing.T) {
	errRead := errors.New("read failed")
	tests := []struct {
		name    string
		body    io.Reader
		chunked bool
		bufSize int
		// writes are the writes reaching the connection, "HEAD" being the
		// head buffered before WriteBody, when the caller flushes after it.
		writes  []string
		wantErr error
	}{
		{name: "nil body", body: nil, bufSize: 8, writes: []string{"HEAD"}},
		{name: "NoBody", body: http.NoBody, bufSize: 8, writes: []string{"HEAD"}},
		{name: "nil body chunked", body: nil, chunked: true, bufSize: 8, writes: []string{"HEAD0\r\n\r\n"}},
		{name: "content-length", body: strings.NewReader("hello world"), bufSize: 4,
			writes: []string{"HEAD", "hello world"}},
		{name: "empty reader", body: strings.NewReader(""), bufSize: 4, writes: []string{"HEAD"}},
		{name: "chunked", body: strings.NewReader("hello world"), chunked: true, bufSize: 4,
			writes: []string{"HEAD", "4\r\nhell\r\n", "4\r\no wo\r\n", "3\r\nrld\r\n", "0\r\n\r\n"}},
		{name: "chunked large", body: strings.NewReader(strings.Repeat("x", 300)), chunked: true, bufSize: 256,
			writes: []string{"HEAD", "100\r\n" + strings.Repeat("x", 256) + "\r\n", "2c\r\n" + strings.Repeat("x", 44) + "\r\n", "0\r\n\r\n"}},
		{name: "chunked empty", body: strings.NewReader(""), chunked: true, bufSize: 4, writes: []string{"HEAD", "0\r\n\r\n"}},
		{name: "chunked data with EOF", body: iotest.DataErrReader(strings.NewReader("ab")), chunked: true, bufSize: 8,
			writes: []string{"HEAD", "2\r\nab\r\n", "0\r\n\r\n"}},
		{name: "one byte reads", body: iotest.OneByteReader(strings.NewReader("abc")), chunked: true, bufSize: 8,
			writes: []string{"HEAD", "1\r\na\r\n", "1\r\nb\r\n", "1\r\nc\r\n", "0\r\n\r\n"}},
		{name: "read error", body: io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(errRead)), bufSize: 8,
			writes: []string{"HEAD", "ab"}, wantErr: errRead},
		{name: "chunked read error", body: io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(errRead)), chunked: true, bufSize: 8,
			writes: []string{"HEAD", "2\r\nab\r\n"}, wantErr: errRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conn writeLog
			bw := bufio.NewWriterSize(&conn, 4096)
			bw.WriteString("HEAD")
			err := upstream.WriteBody(bw, tt.body, tt.chunked, make([]byte, tt.bufSize))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteBody = %v, want %v", err, tt.wantErr)
			}
			bw.Flush()
			if !reflect.DeepEqual(conn.writes, tt.writes) {
				t.Errorf("writes = %q, want %q", conn.writes, tt.writes)
			}
		})
	}
}

func TestWriteBodyWriteError(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		bw := bufio.NewWriterSize(errWriter{}, 16)
		bw.WriteString("HEAD")
		if err := upstream.WriteBody(bw, strings.NewReader("body"), chunked, make([]byte, 8)); err == nil {
			t.Errorf("chunked=%v: WriteBody succeeded on a failing writer", chunked)
		}
	}
}

func TestWriteBodyEmptyBuffer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("WriteBody with an empty buffer did not panic")
		}
	}()
	upstream.WriteBody(bufio.NewWriter(io.Discard), strings.NewReader("x"), false, nil)
}

// benchRequest is a typical inbound GET with 8 headers, one of them pruned.
func benchRequest() *http.Request {
	r := newRequest("GET", "/api/v1/items?id=42", http.Header{
		"Accept":                   {"application/json"},
		"Accept-Encoding":          {"gzip, deflate, br"},
		"Accept-Language":          {"en-US,en;q=0.9"},
		"Cookie":                   {"session=0123456789abcdef"},
		"Knative-Serving-Revision": {"hello-00001"},
		"Traceparent":              {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"User-Agent":               {"Mozilla/5.0 (X11; Linux x86_64)"},
		"X-Request-Id":             {"7f0c6a2e-91b5-4d1e-9c3a-2f7e8b6d5c4a"},
	})
	r.Host = "hello.default.example.com"
	return r
}

func BenchmarkRequestHeadWrite(b *testing.B) {
	r := benchRequest()
	head := &upstream.RequestHead{Pruned: pkghttp.RevisionHeaders, Target: "127.0.0.1:8080"}
	bw := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := head.Write(bw, r, "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
		bw.Flush()
	}
}

// BenchmarkRequestHeadNetHTTP is the reference: what the ReverseProxy and
// Request.write do for the same head (clone, header edits, write), without
// the Transport's connection hand-offs.
func BenchmarkRequestHeadNetHTTP(b *testing.B) {
	r := benchRequest()
	bw := bufio.NewWriterSize(io.Discard, 4096)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out := r.Clone(ctx)
		out.URL.Scheme, out.URL.Host = "http", "127.0.0.1:8080"
		for _, k := range pkghttp.RevisionHeaders {
			delete(out.Header, k)
		}
		for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
			"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
			out.Header.Del(k)
		}
		out.Header.Set("X-Forwarded-For", "192.0.2.1")
		if err := out.Write(bw); err != nil {
			b.Fatal(err)
		}
		bw.Flush()
	}
}
