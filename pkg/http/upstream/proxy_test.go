package upstream_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/upstream"
)

// pxIOTimeout bounds every blocking read of a test client or backend, so
// that a broken proxy fails the test instead of hanging it. It is a
// deadline, never waited for.
const pxIOTimeout = 20 * time.Second

// pxFronts is one backend behind two front servers: the header-pruning
// ReverseProxy with the production transport and error handler, and the
// lean Proxy (whose Fallback is that ReverseProxy).
type pxFronts struct {
	rp, lean *httptest.Server
	pool     *upstream.Pool
	dials    atomic.Int32
	proxy    *upstream.Proxy
}

// pxStart builds the two fronts for the backend at addr; wrap, when set,
// wraps the lean handler (to observe it).
func pxStart(t testing.TB, addr string, wrap func(http.Handler) http.Handler) *pxFronts {
	t.Helper()
	f := &pxFronts{}
	errorHandler := pkghttp.ErrorHandler(zap.NewNop().Sugar())
	rp := pkghttp.NewHeaderPruningReverseProxy(addr, pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
	transport := pkghttp.NewProxyTransport(0)
	rp.Transport = transport
	rp.ErrorHandler = errorHandler
	rp.ErrorLog = log.New(io.Discard, "", 0)

	dial := pkghttp.NewBackoffDialer().DialContext
	f.pool = &upstream.Pool{
		Addr: addr,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			f.dials.Add(1)
			return dial(ctx, network, addr)
		},
	}
	pruned := make([]string, len(pkghttp.RevisionHeaders))
	for i, h := range pkghttp.RevisionHeaders {
		pruned[i] = http.CanonicalHeaderKey(h)
	}
	f.proxy = &upstream.Proxy{
		Pool:         f.pool,
		Head:         upstream.RequestHead{Pruned: pruned, Target: addr},
		Fallback:     rp,
		ErrorHandler: errorHandler,
		MaxBody:      -1, // every body, to compare the lean path's framing
	}
	var lean http.Handler = f.proxy
	if wrap != nil {
		lean = wrap(lean)
	}
	f.rp = pxServer(t, rp)
	f.lean = pxServer(t, lean)
	t.Cleanup(func() {
		transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
		f.pool.CloseIdle()
	})
	return f
}

// pxServer starts a front server whose error log is discarded.
func pxServer(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// pxOutcome is everything a client sees of one exchange.
type pxOutcome struct {
	Informational []string // "103 {headers}", in order
	HeadErr       string
	Status        string
	Proto         string
	Header        http.Header // without Date
	ContentLength int64
	Chunked       bool
	Body          string
	BodyErr       string
	Trailer       http.Header
	Close         bool
}

// pxDo sends raw on conn and reads the response as a client would.
func pxDo(conn net.Conn, br *bufio.Reader, raw string) pxOutcome {
	var o pxOutcome
	conn.SetDeadline(time.Now().Add(pxIOTimeout))
	if _, err := io.WriteString(conn, raw); err != nil {
		o.HeadErr = "write: " + err.Error()
		return o
	}
	method, _, _ := strings.Cut(raw, " ")
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			o.HeadErr = err.Error()
			return o
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 {
			o.Informational = append(o.Informational, fmt.Sprintf("%s %v", resp.Status, resp.Header))
			continue
		}
		o.Status, o.Proto = resp.Status, resp.Proto
		resp.Header.Del("Date")
		o.Header = resp.Header
		o.ContentLength = resp.ContentLength
		o.Chunked = len(resp.TransferEncoding) > 0
		body, err := io.ReadAll(resp.Body)
		o.Body = string(body)
		if err != nil {
			o.BodyErr = err.Error()
		}
		o.Trailer = resp.Trailer
		o.Close = resp.Close
		return o
	}
}

// pxOnce sends raw to addr on a new connection.
func pxOnce(t testing.TB, addr, raw string) pxOutcome {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return pxDo(conn, bufio.NewReader(conn), raw)
}

// pxRecordHandler wraps h to record, on seen, what the backend received.
func pxRecordHandler(seen chan<- string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s host=%q cl=%d te=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
		}
		fmt.Fprintf(&b, "body=%q err=%v trailer=%v", body, err, r.Trailer)
		seen <- b.String()
		h(w, r)
	}
}

// pxRawAnswer returns the bytes a raw backend writes for the n-th request
// (from 1) on a connection, and whether it closes the connection after.
type pxRawAnswer func(n int) (resp string, closeAfter bool)

// pxRawBackend starts a TCP upstream that reads requests (recording their
// exact bytes on seen) and answers with answer. Cleanup closes everything
// and waits for its goroutines.
func pxRawBackend(t testing.TB, seen chan<- string, answer pxRawAnswer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					c.SetDeadline(time.Now().Add(pxIOTimeout))
					raw, err := readRawRequest(br)
					if err != nil {
						return
					}
					if seen != nil {
						seen <- string(raw)
					}
					resp, closeAfter := answer(n)
					io.WriteString(c, resp)
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// pxFixed answers every request with resp, closing after it when
// closeAfter.
func pxFixed(resp string, closeAfter bool) pxRawAnswer {
	return func(int) (string, bool) { return resp, closeAfter }
}

// pxCase is one exchange of the differential table.
type pxCase struct {
	name    string
	request string           // raw request to the front
	handler http.HandlerFunc // an httptest backend, or
	raw     pxRawAnswer      // a raw TCP backend
	refused bool             // no backend: a closed port
	// racySniff: the response is flushed at once and has no Content-Type;
	// whether the ReverseProxy's client gets a sniffed one depends on a
	// race between its flush timer and its first write, so a Content-Type
	// present on one side only is not a difference.
	racySniff bool
	// racy100: an Expect: 100-continue exchange (on the ReverseProxy, on
	// both sides): whether the client gets one 100 Continue or two (the
	// front server's and the upstream's, forwarded) depends on the order
	// in which net/http's client and server reach the body.
	racy100 bool
}

const pxHost = "Host: example.com\r\n"

func pxCases() []pxCase {
	mib := strings.Repeat("0123456789abcdef", 1<<16)
	return []pxCase{{
		name:    "GET",
		request: "GET /a/b?c=d HTTP/1.1\r\n" + pxHost + "User-Agent: t\r\nKnative-Serving-Revision: r\r\nConnection: X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nTe: trailers\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			io.WriteString(w, "hello")
		},
	}, {
		name:    "HTTP/1.0 client",
		request: "GET /old HTTP/1.0\r\n" + pxHost + "X-Forwarded-For: 192.0.2.9\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
	}, {
		name:    "client asks to close",
		request: "GET / HTTP/1.1\r\n" + pxHost + "Connection: close\r\nX-Forwarded-For: a, b\r\nX-Forwarded-For: c\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "bye") },
	}, {
		name:    "HEAD with Content-Length",
		request: "HEAD / HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "42")
		},
	}, {
		name:    "HEAD without length",
		request: "HEAD / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", false),
	}, {
		name:    "POST known length",
		request: "POST /echo HTTP/1.1\r\n" + pxHost + "Content-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
	}, {
		name:    "POST chunked",
		request: "POST /echo HTTP/1.1\r\n" + pxHost + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
	}, {
		name:    "POST empty",
		request: "POST /e HTTP/1.1\r\n" + pxHost + "Content-Length: 0\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) },
	}, {
		name:    "204",
		request: "DELETE /x HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Gone", "yes")
			w.WriteHeader(http.StatusNoContent)
		},
	}, {
		name:    "304",
		request: "GET /c HTTP/1.1\r\n" + pxHost + "If-None-Match: \"v1\"\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		},
	}, {
		name:    "103 Early Hints",
		request: "GET /hints HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Link", "</app.js>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("X-Final", "1")
			io.WriteString(w, "done")
		},
	}, {
		name:    "1xx with hop-by-hop fields",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 199 Odd\r\nConnection: keep-alive\r\nX-Info: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
	}, {
		name:    "until close",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the backend closes", true),
	}, {
		name:    "HTTP/1.0 response",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", true),
	}, {
		name:    "hop-by-hop response fields",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nConnection: x-hop, Keep-Alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: nope\r\nX-Stay: 2\r\nContent-Length: 2\r\n\r\nok", false),
	}, {
		name:    "Connection close response",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true),
	}, {
		name:    "chunked with declared trailers",
		request: "GET /t HTTP/1.1\r\n" + pxHost + "Te: trailers\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "abc")
		},
	}, {
		name:    "chunked with undeclared trailers",
		request: "GET /t HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-Late", "z")
		},
	}, {
		name:      "chunked declared and undeclared trailers",
		request:   "GET /t HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:       pxFixed("HTTP/1.1 200 OK\r\nTrailer: X-A\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", false),
		racySniff: true,
	}, {
		name:    "1 MiB with length",
		request: "GET /big HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(mib)))
			io.WriteString(w, mib)
		},
	}, {
		name:    "1 MiB chunked",
		request: "GET /big HTTP/1.1\r\n" + pxHost + "\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, mib) },
	}, {
		name:    "1 MiB POST",
		request: "POST /up HTTP/1.1\r\n" + pxHost + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(mib)) + mib,
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "got it") },
	}, {
		name:    "close mid-body with length",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", true),
	}, {
		name:      "close mid-body chunked",
		request:   "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:       pxFixed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\nwor", true),
		racySniff: true,
	}, {
		name:    "close before the response",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("", true),
	}, {
		name:    "close mid-head",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nX-A: 1\r\n", true),
	}, {
		name:    "101 not asked for",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true),
	}, {
		name:    "malformed status",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 abc OK\r\n\r\n", true),
	}, {
		name:    "malformed header line",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", true),
	}, {
		name:    "bad Content-Length",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true),
	}, {
		name:    "head too large",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", 1<<20)+"\r\nContent-Length: 0\r\n\r\n", true),
	}, {
		name:    "unsolicited 100 Continue",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
	}, {
		name:    "many 1xx",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed(strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", 20)+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
	}, {
		name:    "Expect falls back",
		request: "POST / HTTP/1.1\r\n" + pxHost + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "yes") },
		racy100: true,
	}, {
		name:    "refused",
		request: "GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		refused: true,
	}, {
		name:    "event-stream with length",
		request: "GET /sse HTTP/1.1\r\n" + pxHost + "\r\n",
		raw:     pxFixed("HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nContent-Length: 9\r\n\r\ndata: 1\n\n", false),
	}, {
		name:    "Upgrade request falls back",
		request: "GET /ws HTTP/1.1\r\n" + pxHost + "Connection: Upgrade\r\nUpgrade: foo\r\n\r\n",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "no") },
	}}
}

// pxBackend starts tc's backend and returns its address and what it saw.
func pxBackend(t *testing.T, tc pxCase) (string, chan string) {
	seen := make(chan string, 16)
	switch {
	case tc.refused:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, seen
	case tc.raw != nil:
		return pxRawBackend(t, seen, tc.raw), seen
	}
	srv := httptest.NewUnstartedServer(pxRecordHandler(seen, tc.handler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), seen
}

// pxDrain returns what is on seen now.
func pxDrain(seen chan string) []string {
	var got []string
	for {
		select {
		case s := <-seen:
			got = append(got, s)
		default:
			return got
		}
	}
}

// TestProxyDifferential runs each exchange through the ReverseProxy and
// through the lean Proxy, in front of the same backend, and compares what
// the client and the backend received.
func TestProxyDifferential(t *testing.T) {
	pxVerifyNone(t)
	for _, tc := range pxCases() {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := pxBackend(t, tc)
			f := pxStart(t, addr, nil)

			want := pxOnce(t, f.rp.Listener.Addr().String(), tc.request)
			wantSeen := pxDrain(seen)
			got := pxOnce(t, f.lean.Listener.Addr().String(), tc.request)
			gotSeen := pxDrain(seen)

			if tc.racySniff {
				pxDropSniffed(&got, &want)
			}
			if tc.racy100 {
				if len(got.Informational) == 0 || len(want.Informational) == 0 {
					t.Errorf("no 100 Continue: got %v, want %v", got.Informational, want.Informational)
				}
				got.Informational, want.Informational = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("client outcome differs\n got: %+v\nwant: %+v", got, want)
			}
			if !reflect.DeepEqual(gotSeen, wantSeen) {
				t.Errorf("backend saw differently\n got: %q\nwant: %q", gotSeen, wantSeen)
			}
		})
	}
}

// pxDropSniffed removes the Content-Type "text/plain; charset=utf-8" the
// server sniffs from either outcome's header when the other has none.
func pxDropSniffed(a, b *pxOutcome) {
	const sniffed = "text/plain; charset=utf-8"
	ca, cb := a.Header.Get("Content-Type"), b.Header.Get("Content-Type")
	switch {
	case ca == sniffed && cb == "":
		a.Header.Del("Content-Type")
	case cb == sniffed && ca == "":
		b.Header.Del("Content-Type")
	}
}

// pxVerifyNone checks, after every other cleanup of the test, that no
// goroutine was left behind.
func pxVerifyNone(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// TestProxyKeepAlive sends many sequential requests, of several kinds,
// through the lean Proxy: the Pool dials once.
func TestProxyKeepAlive(t *testing.T) {
	pxVerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/trailer":
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "ab")
			w.Header().Set("X-T", "1")
		default:
			io.WriteString(w, "ab")
		}
	}))
	t.Cleanup(srv.Close)
	f := pxStart(t, srv.Listener.Addr().String(), nil)

	conn, err := net.Dial("tcp", f.lean.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	requests := []string{
		"GET / HTTP/1.1\r\n" + pxHost + "\r\n",
		"GET /chunked HTTP/1.1\r\n" + pxHost + "\r\n",
		"GET /trailer HTTP/1.1\r\n" + pxHost + "\r\n",
		"HEAD / HTTP/1.1\r\n" + pxHost + "\r\n",
		"POST / HTTP/1.1\r\n" + pxHost + "Content-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\n" + pxHost + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	}
	for i := range 60 {
		o := pxDo(conn, br, requests[i%len(requests)])
		if o.Status != "200 OK" || o.BodyErr != "" || o.HeadErr != "" {
			t.Fatalf("request %d: %+v", i, o)
		}
	}
	if n := f.dials.Load(); n != 1 {
		t.Errorf("dials = %d, want 1", n)
	}
}

// pxStaleAnswer answers the first request on each connection and closes
// the connection without answering the second: to the proxy, a reused
// connection that dies before any response byte.
func pxStaleAnswer(n int) (string, bool) {
	if n == 1 {
		return "HTTP/1.1 204 No Content\r\nX-N: 1\r\n\r\n", false
	}
	return "", true
}

// TestProxyStaleConnection checks the retry rule against net/http's: a GET
// on a reused connection that dies before any response byte is retried on a
// new connection; a POST with a body is not, and gets the ReverseProxy's
// 502.
func TestProxyStaleConnection(t *testing.T) {
	pxVerifyNone(t)
	for _, tc := range []struct {
		name      string
		second    string
		wantDials int32
	}{
		{"GET retried", "GET /2 HTTP/1.1\r\n" + pxHost + "\r\n", 2},
		{"HEAD retried", "HEAD /2 HTTP/1.1\r\n" + pxHost + "\r\n", 2},
		{"POST without body, idempotency key", "POST /2 HTTP/1.1\r\n" + pxHost + "Idempotency-Key: k\r\nContent-Length: 0\r\n\r\n", 2},
		{"POST with body not retried", "POST /2 HTTP/1.1\r\n" + pxHost + "Content-Length: 3\r\n\r\nabc", 1},
		{"DELETE not retried", "DELETE /2 HTTP/1.1\r\n" + pxHost + "\r\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := pxRawBackend(t, nil, pxStaleAnswer)
			f := pxStart(t, addr, nil)
			obs := &pxObserver{}
			f.proxy.Observer = obs
			first := "GET /1 HTTP/1.1\r\n" + pxHost + "\r\n"
			var outcomes [2][2]pxOutcome
			for i, front := range []string{f.rp.Listener.Addr().String(), f.lean.Listener.Addr().String()} {
				outcomes[i][0] = pxOnce(t, front, first)
				outcomes[i][1] = pxOnce(t, front, tc.second)
			}
			if !reflect.DeepEqual(outcomes[1], outcomes[0]) {
				t.Errorf("client outcomes differ\n got: %+v\nwant: %+v", outcomes[1], outcomes[0])
			}
			if n := f.dials.Load(); n != tc.wantDials {
				t.Errorf("lean dials = %d, want %d", n, tc.wantDials)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if obs.starts != 2 || len(obs.done) != 2 {
				t.Errorf("observed %d starts, %d ends; want one exchange per request, retries included", obs.starts, len(obs.done))
			}
		})
	}
}

// TestProxyUncheckedReuse checks that skipping the liveness check
// (Pool.Unchecked) loses no replayable request: the backend closes every
// connection after its response, without saying so, and each GET after the
// first meets a dead reused connection, finds EOF and is retried.
func TestProxyUncheckedReuse(t *testing.T) {
	pxVerifyNone(t)
	addr := pxRawBackend(t, nil, func(int) (string, bool) {
		return "HTTP/1.1 204 No Content\r\nX-N: 1\r\n\r\n", true
	})
	f := pxStart(t, addr, nil)
	f.pool.Unchecked = time.Hour
	const requests = 5
	for i := range requests {
		got := pxOnce(t, f.lean.Listener.Addr().String(), "GET /"+strconv.Itoa(i)+" HTTP/1.1\r\n"+pxHost+"\r\n")
		if got.Status != "204 No Content" || got.Header.Get("X-N") != "1" {
			t.Fatalf("request %d: %+v, want the backend's 204", i, got)
		}
	}
	// Each request after the first is written on the previous request's
	// dead connection (unchecked: TestPoolGetReplayableUnchecked), then
	// retried on one fresh connection.
	if n := f.dials.Load(); n != requests {
		t.Errorf("dials = %d, want %d", n, requests)
	}
}

// TestProxyStreaming checks that each event of a text/event-stream (and
// each write of a response of unknown length) reaches the client before
// the backend sends the next: the backend waits for the client's word.
func TestProxyStreaming(t *testing.T) {
	pxVerifyNone(t)
	for _, contentType := range []string{"text/event-stream", "application/octet-stream"} {
		t.Run(contentType, func(t *testing.T) {
			next := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				for i := range 3 {
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
					fmt.Fprintf(w, "data: %d\n\n", i)
					w.(http.Flusher).Flush()
				}
			}))
			t.Cleanup(srv.Close)
			f := pxStart(t, srv.Listener.Addr().String(), nil)
			for _, front := range []*httptest.Server{f.rp, f.lean} {
				conn, err := net.Dial("tcp", front.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				conn.SetDeadline(time.Now().Add(pxIOTimeout))
				io.WriteString(conn, "GET /events HTTP/1.1\r\n"+pxHost+"\r\n")
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					next <- struct{}{}
					want := fmt.Sprintf("data: %d\n\n", i)
					buf := make([]byte, len(want))
					if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != want {
						t.Fatalf("event %d: %q, %v", i, buf, err)
					}
				}
				rest, err := io.ReadAll(resp.Body)
				if err != nil || len(rest) != 0 {
					t.Errorf("after the events: %q, %v", rest, err)
				}
				conn.Close()
			}
		})
	}
}

// TestProxyClientGone closes the client's connection in the middle of a
// response whose backend then stalls: the lean handler returns (the
// context's end expires the upstream connection), the connection is
// discarded, and no goroutine is left.
func TestProxyClientGone(t *testing.T) {
	pxVerifyNone(t)
	backendDone := make(chan error, 1)
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "part")
		w.(http.Flusher).Flush()
		close(started)
		select { // stalls until the proxy gives up the connection
		case <-r.Context().Done():
			backendDone <- r.Context().Err()
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)

	handlerDone := make(chan any, 1)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				h.ServeHTTP(w, r)
				return
			}
			defer func() {
				p := recover()
				handlerDone <- p
				if p != nil {
					panic(p)
				}
			}()
			h.ServeHTTP(w, r)
		})
	}
	f := pxStart(t, srv.Listener.Addr().String(), wrap)

	conn, err := net.Dial("tcp", f.lean.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(pxIOTimeout))
	io.WriteString(conn, "GET /stall HTTP/1.1\r\n"+pxHost+"\r\n")
	// The proxy is copying the body now; its head is not flushed
	// (Content-Length known), so the client just goes away.
	<-started
	conn.Close()

	select {
	case p := <-handlerDone:
		if p != nil && p != http.ErrAbortHandler {
			t.Errorf("handler panicked with %v", p)
		}
	case <-time.After(pxIOTimeout):
		t.Fatal("the lean handler did not return after the client left")
	}
	select {
	case <-backendDone: // the backend saw its connection closed
	case <-time.After(pxIOTimeout):
		t.Fatal("the upstream connection was not closed")
	}
	// The next request needs a new connection.
	if o := pxOnce(t, f.lean.Listener.Addr().String(), "GET /ok HTTP/1.1\r\n"+pxHost+"\r\n"); o.Body != "ok" {
		t.Errorf("next request: %+v", o)
	}
	if n := f.dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
}

// TestProxyContextCanceledBeforeResponse cancels the request's context
// while the proxy waits for the response head: the ErrorHandler gets
// context.Canceled, and the connection is not reused.
func TestProxyContextCanceledBeforeResponse(t *testing.T) {
	pxVerifyNone(t)
	got := make(chan struct{})
	addr := pxRawBackend(t, nil, func(int) (string, bool) {
		close(got) // a request came; never answer it
		return "", false
	})
	var gotErr error
	p := &upstream.Proxy{
		Pool:     &upstream.Pool{Addr: addr},
		Head:     upstream.RequestHead{Target: addr},
		Fallback: http.NotFoundHandler(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			gotErr = err
		},
	}
	t.Cleanup(p.Pool.CloseIdle)
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	go func() {
		<-got
		cancel()
	}()
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	if !errors.Is(gotErr, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", gotErr)
	}
	if w.Code != 200 || w.Body.Len() != 0 || w.Flushed {
		t.Errorf("something was written: %d %q", w.Code, w.Body)
	}
}

// pxErrWriter is a ResponseWriter whose body writes fail.
type pxErrWriter struct{ h http.Header }

func (w *pxErrWriter) Header() http.Header       { return w.h }
func (w *pxErrWriter) WriteHeader(int)           {}
func (w *pxErrWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

// TestProxyCopyErrorOutsideServer checks that, as the ReverseProxy, a body
// copy error outside an http.Server returns without panicking, and the
// connection is discarded.
func TestProxyCopyErrorOutsideServer(t *testing.T) {
	pxVerifyNone(t)
	addr := pxRawBackend(t, nil, pxFixed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false))
	var dials atomic.Int32
	p := &upstream.Proxy{
		Pool: &upstream.Pool{Addr: addr, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}},
		Head:     upstream.RequestHead{Target: addr},
		Fallback: http.NotFoundHandler(),
	}
	t.Cleanup(p.Pool.CloseIdle)
	for range 2 {
		p.ServeHTTP(&pxErrWriter{h: http.Header{}}, httptest.NewRequest("GET", "/", nil))
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("dials = %d, want 2 (the failed connection discarded)", n)
	}
}

// TestProxyDefaultErrorHandler checks the nil ErrorHandler: 502, no body.
func TestProxyDefaultErrorHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(nil) })
	p := &upstream.Proxy{Pool: &upstream.Pool{Addr: addr}, Head: upstream.RequestHead{Target: addr}, Fallback: http.NotFoundHandler()}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusBadGateway || w.Body.Len() != 0 {
		t.Errorf("got %d %q, want 502 and no body", w.Code, w.Body)
	}
}

// TestProxyBuffers checks that a BufferPool's buffers are taken and given
// back.
func TestProxyBuffers(t *testing.T) {
	pxVerifyNone(t)
	addr := pxRawBackend(t, nil, pxFixed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false))
	bp := &pxCountingBuffers{}
	p := &upstream.Proxy{Pool: &upstream.Pool{Addr: addr}, Head: upstream.RequestHead{Target: addr}, Fallback: http.NotFoundHandler(), Buffers: bp}
	t.Cleanup(p.Pool.CloseIdle)
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Body.String() != "ok" || bp.gets != 1 || bp.puts != 1 {
		t.Errorf("body %q, gets %d, puts %d", w.Body, bp.gets, bp.puts)
	}
}

type pxCountingBuffers struct{ gets, puts int }

func (b *pxCountingBuffers) Get() []byte    { b.gets++; return make([]byte, 1024) }
func (b *pxCountingBuffers) Put(buf []byte) { b.puts++ }

var _ httputil.BufferPool = (*pxCountingBuffers)(nil)

var pxLocalPort = regexp.MustCompile(`127\.0\.0\.1:[0-9]+->`)

// TestProxyRequestBodyError fails the inbound body mid-way: both proxies
// hand the body's own error to the ErrorHandler (a 502 with its text).
func TestProxyRequestBodyError(t *testing.T) {
	pxVerifyNone(t)
	for _, tc := range []struct {
		name          string
		contentLength int64
		te            []string
	}{
		{"known length", 10, nil},
		{"chunked", -1, []string{"chunked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			t.Cleanup(srv.Close)
			f := pxStart(t, srv.Listener.Addr().String(), nil)
			var out [2]string
			for i, h := range []http.Handler{f.proxy.Fallback, f.proxy} {
				r := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader("hello"), iotest.ErrReader(errors.New("boom"))))
				r.ContentLength, r.TransferEncoding = tc.contentLength, tc.te
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				// The local ports differ: each proxy has its connection.
				body := pxLocalPort.ReplaceAllString(w.Body.String(), "127.0.0.1:PORT->")
				out[i] = fmt.Sprintf("%d %v %q", w.Code, w.Header(), body)
			}
			if out[1] != out[0] {
				t.Errorf("got  %s\nwant %s", out[1], out[0])
			}
		})
	}
}

// pxEarlyBackend starts an upstream that reads only the request head,
// answers 413 and closes the connection, leaving the body unread.
func pxEarlyBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(pxIOTimeout))
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestProxyEarlyResponse sends bodies to an upstream that answers before
// reading them and closes: the lean Proxy forwards the answer, which the
// ReverseProxy does too unless its write fails first (then it answers 502:
// a race, so only the lean side is checked).
func TestProxyEarlyResponse(t *testing.T) {
	pxVerifyNone(t)
	f := pxStart(t, pxEarlyBackend(t), nil)
	for _, size := range []int{1 << 10, 1 << 20} {
		for _, chunked := range []bool{false, true} {
			body := strings.Repeat("x", size)
			req := "POST / HTTP/1.1\r\n" + pxHost + fmt.Sprintf("Content-Length: %d\r\n\r\n", size) + body
			if chunked {
				req = "POST / HTTP/1.1\r\n" + pxHost + fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", size, body)
			}
			o := pxOnce(t, f.lean.Listener.Addr().String(), req)
			if o.Status != "413 Request Entity Too Large" || o.Body != "big" {
				t.Errorf("size %d, chunked %v: %+v", size, chunked, o)
			}
		}
	}
}
