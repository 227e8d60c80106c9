package sharedmain

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunServerPaths sends the same raw exchanges to the main port served
// by the fast-path server and by net/http's alone: the client receives the
// same bytes (but the Date), for requests of both servers (the chunked
// POST, HTTP/1.0 and the malformed line go to net/http's on the fast
// path's side too), through the whole chain (probes, drainer, metrics,
// timeout, proxy).
func TestRunServerPaths(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Forwarded-For"))
		if r.URL.Path == "/stream" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		w.Write(b)
	}))
	t.Cleanup(app.Close)
	exchanges := []string{
		"GET /hello?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n" +
			"POST /post HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" +
			"HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n" +
			"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n" +
			"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nK-Network-Probe: queue\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: kube-probe/1.30\r\nConnection: close\r\n\r\n",
		"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /ten HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nBAD LINE\r\n\r\n",
	}
	got := map[string][]string{}
	for _, path := range []string{upstreamAuto, upstreamGeneric} {
		t.Run(path, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			q := startQP(t, app, map[string]string{"QP_SERVER_PATH": path})
			addr := strings.TrimPrefix(q.url(serverMain, ""), "http://")
			for _, raw := range exchanges {
				got[path] = append(got[path], rawExchange(t, addr, raw))
			}
		})
	}
	for i, raw := range exchanges {
		if a, g := got[upstreamAuto][i], got[upstreamGeneric][i]; a != g {
			t.Errorf("%q:\nnet/http's server sent\n%q\nthe fast path sent\n%q", raw, g, a)
		}
	}
	if !strings.Contains(got[upstreamAuto][0], "X-Seen: HEAD /head 127.0.0.1") {
		t.Errorf("the pipelined requests were not all proxied: %q", got[upstreamAuto][0])
	}
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// rawExchange writes raw on a new connection to addr and returns what came
// back until the server closed (each exchange ends the connection), Date
// lines blanked. The client does not half-close: a background read would
// see the end of its stream and cancel the requests still buffered.
func rawExchange(t *testing.T, addr, raw string) string {
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
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return dateLine.ReplaceAllString(string(b), "Date: X\r")
}
