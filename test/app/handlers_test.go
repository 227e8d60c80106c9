package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	tests := []struct {
		name         string
		method, path string
		wantCode     int
		wantBody     string   // exact, unless wantContains is set
		wantContains []string // substrings of the body
		wantType     string   // Content-Type prefix, if set
	}{
		{name: "greeting", method: "GET", path: "/", wantCode: 200, wantType: "text/plain",
			wantContains: []string{"Hello from the demo user container!\n", "protocol: HTTP/1.1\n", "method: GET\n", "path: /\n"}},
		{name: "greeting any path", method: "POST", path: "/some/where", wantCode: 200,
			wantContains: []string{"Hello from the demo user container!\n", "method: POST\n", "path: /some/where\n"}},
		{name: "healthz", method: "GET", path: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "status teapot", method: "GET", path: "/status?code=418", wantCode: 418, wantBody: "status 418\n"},
		{name: "status 503", method: "GET", path: "/status?code=503", wantCode: 503, wantBody: "status 503\n"},
		{name: "status missing", method: "GET", path: "/status", wantCode: 400, wantContains: []string{`"code"`}},
		{name: "status too low", method: "GET", path: "/status?code=99", wantCode: 400, wantContains: []string{`"code"`}},
		{name: "status too high", method: "GET", path: "/status?code=600", wantCode: 400, wantContains: []string{`"code"`}},
		{name: "status not a number", method: "GET", path: "/status?code=x", wantCode: 400, wantContains: []string{`"code"`}},
		{name: "sleep zero", method: "GET", path: "/sleep?ms=0", wantCode: 200, wantBody: "slept 0 ms\n"},
		{name: "sleep short", method: "GET", path: "/sleep?ms=3", wantCode: 200, wantBody: "slept 3 ms\n"},
		{name: "sleep missing", method: "GET", path: "/sleep", wantCode: 400, wantContains: []string{`"ms"`}},
		{name: "sleep negative", method: "GET", path: "/sleep?ms=-1", wantCode: 400, wantContains: []string{`"ms"`}},
		{name: "sleep overflow", method: "GET", path: "/sleep?ms=9223372036854775807", wantCode: 400, wantContains: []string{`"ms"`}},
		{name: "stream", method: "GET", path: "/stream?n=3&interval=0s", wantCode: 200, wantType: "text/plain",
			wantBody: "chunk 1\nchunk 2\nchunk 3\n"},
		{name: "stream default n", method: "GET", path: "/stream?interval=0s", wantCode: 200,
			wantBody: "chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n"},
		{name: "stream empty", method: "GET", path: "/stream?n=0", wantCode: 200, wantBody: ""},
		{name: "stream bad n", method: "GET", path: "/stream?n=x", wantCode: 400, wantContains: []string{`"n"`}},
		{name: "stream bad interval", method: "GET", path: "/stream?interval=soon", wantCode: 400, wantContains: []string{`"interval"`}},
		{name: "stream negative interval", method: "GET", path: "/stream?interval=-1s", wantCode: 400, wantContains: []string{`"interval"`}},
		{name: "sse", method: "GET", path: "/sse?n=2&interval=1ms", wantCode: 200, wantType: "text/event-stream",
			wantBody: "data: 1\n\ndata: 2\n\n"},
		{name: "download missing bytes", method: "GET", path: "/download", wantCode: 400, wantContains: []string{`"bytes"`}},
		{name: "download negative", method: "GET", path: "/download?bytes=-5", wantCode: 400, wantContains: []string{`"bytes"`}},
		{name: "crash disabled", method: "POST", path: "/crash", wantCode: 404, wantContains: []string{"ENABLE_CRASH"}},
		{name: "ready needs POST", method: "GET", path: "/admin/ready?value=true", wantCode: 405, wantBody: "use POST\n"},
		{name: "ready bad value", method: "POST", path: "/admin/ready?value=maybe", wantCode: 400, wantContains: []string{"true or false"}},
		{name: "ws without upgrade", method: "GET", path: "/ws", wantCode: 400, wantBody: "Bad Request\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tc.wantCode, body)
			}
			if tc.wantContains == nil && body != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			for _, s := range tc.wantContains {
				if !strings.Contains(body, s) {
					t.Errorf("body %q does not contain %q", body, s)
				}
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type = %q, want prefix %q", ct, tc.wantType)
			}
		})
	}
}

// requestInfo mirrors the JSON written by /headers.
type requestInfo struct {
	Method     string      `json:"method"`
	Host       string      `json:"host"`
	Proto      string      `json:"proto"`
	Path       string      `json:"path"`
	RawQuery   string      `json:"raw_query"`
	RequestURI string      `json:"request_uri"`
	RemoteAddr string      `json:"remote_addr"`
	Headers    http.Header `json:"headers"`
}

func TestHeaders(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	tests := []struct {
		method, target, host string
		header               http.Header
	}{
		{method: "GET", target: "/headers", host: "example.test", header: http.Header{"X-One": {"1"}}},
		{method: "PUT", target: "/headers?a=1&b=two%20words", host: "svc.ns.example.com:8080",
			header: http.Header{"X-Multi": {"first", "second"}, "Forwarded": {"for=192.0.2.1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got requestInfo
			if err := json.Unmarshal([]byte(readAll(t, resp)), &got); err != nil {
				t.Fatal(err)
			}
			path, query, _ := strings.Cut(tc.target, "?")
			want := requestInfo{Method: tc.method, Host: tc.host, Proto: "HTTP/1.1", Path: path,
				RawQuery: query, RequestURI: tc.target}
			if got.Method != want.Method || got.Host != want.Host || got.Proto != want.Proto ||
				got.Path != want.Path || got.RawQuery != want.RawQuery || got.RequestURI != want.RequestURI {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if host, _, err := net.SplitHostPort(got.RemoteAddr); err != nil || host != "127.0.0.1" {
				t.Errorf("remote_addr = %q, want 127.0.0.1:port", got.RemoteAddr)
			}
			for k, vs := range tc.header {
				if !slices.Equal(got.Headers[k], vs) {
					t.Errorf("header %s = %q, want %q", k, got.Headers[k], vs)
				}
			}
			if got.Headers.Get("User-Agent") == "" {
				t.Errorf("headers %v lack the client's User-Agent", got.Headers)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, body := range []string{"", "hello", string(big)} {
		t.Run(strconv.Itoa(len(body)), func(t *testing.T) {
			resp, err := ts.Client().Post(ts.URL+"/upload", "application/octet-stream", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Bytes  int    `json:"bytes"`
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal([]byte(readAll(t, resp)), &got); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(body))
			if got.Bytes != len(body) || got.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("got %+v, want bytes %d sha256 %x", got, len(body), sum)
			}
		})
	}
}

func TestDownload(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	for _, n := range []int{0, 1, len(downloadPattern), len(downloadPattern) + 1, 100_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			resp, err := ts.Client().Get(ts.URL + "/download?bytes=" + strconv.Itoa(n))
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 200 || resp.ContentLength != int64(n) {
				t.Errorf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, n)
			}
			if want := strings.Repeat(downloadPattern, n/len(downloadPattern)+1)[:n]; body != want {
				t.Errorf("body of %d bytes is not the pattern repeated to %d bytes", len(body), n)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	type step struct {
		advance      time.Duration
		method, path string
		wantCode     int
	}
	healthz := func(advance time.Duration, code int) step { return step{advance, "GET", "/healthz", code} }
	force := func(v string) step { return step{0, "POST", "/admin/ready?value=" + v, 200} }
	tests := []struct {
		name  string
		delay time.Duration
		steps []step
	}{
		{name: "no delay", steps: []step{healthz(0, 200)}},
		{name: "delay", delay: 5 * time.Second, steps: []step{
			healthz(0, 503), healthz(5*time.Second-time.Nanosecond, 503), healthz(time.Nanosecond, 200), healthz(time.Hour, 200),
		}},
		{name: "forced down then up", steps: []step{
			healthz(0, 200), force("false"), healthz(0, 503), healthz(time.Hour, 503), force("true"), healthz(0, 200),
		}},
		{name: "forced up before the delay", delay: time.Hour, steps: []step{
			healthz(0, 503), force("true"), healthz(0, 200), force("false"), healthz(2*time.Hour, 503),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			mux := newMux(options{readyDelay: tc.delay, now: clock.Now})
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(s.method, s.path, nil))
				if rec.Code != s.wantCode {
					t.Fatalf("step %d: %s %s = %d, want %d", i, s.method, s.path, rec.Code, s.wantCode)
				}
			}
		})
	}
}

func TestCrash(t *testing.T) {
	tests := []struct {
		name     string
		enabled  bool
		wantCode int
		wantExit int // -1: exit must not be called
	}{
		{name: "disabled", enabled: false, wantCode: 404, wantExit: -1},
		{name: "enabled", enabled: true, wantCode: 200, wantExit: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			exited, sentAtExit := -1, ""
			mux := newMux(options{enableCrash: tc.enabled, exit: func(code int) {
				exited = code
				if rec.Flushed {
					sentAtExit = rec.Body.String()
				}
			}})
			mux.ServeHTTP(rec, httptest.NewRequest("POST", "/crash", nil))
			if rec.Code != tc.wantCode || exited != tc.wantExit {
				t.Errorf("status %d, exit %d; want %d, %d", rec.Code, exited, tc.wantCode, tc.wantExit)
			}
			if tc.enabled && sentAtExit != "crashing\n" {
				t.Errorf("reply flushed before exit = %q, want %q", sentAtExit, "crashing\n")
			}
		})
	}
}
