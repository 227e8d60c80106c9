package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// newScaleServer serves scaleHandler in front of serve as the backend does
// with -scale, HTTP/1.1 and h2c.
func newScaleServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(scaleHandler(http.HandlerFunc(serve)))
	ts.Config.Protocols = scaleProtocols()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func TestUploadDownload(t *testing.T) {
	ts := newScaleServer(t)
	for _, tc := range []struct {
		method, target string
		body           string
		wantCode       int
		wantBody       string
		wantLen        int
	}{
		{http.MethodPost, "/upload", "hello", http.StatusOK, "5", -1},
		{http.MethodPost, "/upload", "", http.StatusOK, "0", -1},
		{http.MethodPut, "/upload", strings.Repeat("x", 200000), http.StatusOK, "200000", -1},
		{http.MethodGet, "/download?bytes=0", "", http.StatusOK, "", 0},
		{http.MethodGet, "/download?bytes=3", "", http.StatusOK, "abc", 3},
		{http.MethodGet, "/download?bytes=200001", "", http.StatusOK, "", 200001},
		{http.MethodGet, "/download", "", http.StatusBadRequest, "", -1},
		{http.MethodGet, "/download?bytes=-1", "", http.StatusBadRequest, "", -1},
		{http.MethodGet, "/download?bytes=1099511627777", "", http.StatusBadRequest, "", -1},
		{http.MethodGet, "/", "", http.StatusOK, "ok", -1},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.target, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.target, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", tc.method, tc.target, err)
		}
		if resp.StatusCode != tc.wantCode {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, resp.StatusCode, tc.wantCode)
		}
		if tc.wantBody != "" && string(body) != tc.wantBody {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.target, body, tc.wantBody)
		}
		if tc.wantLen >= 0 {
			if len(body) != tc.wantLen {
				t.Errorf("%s %s: %d bytes, want %d", tc.method, tc.target, len(body), tc.wantLen)
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(tc.wantLen) {
				t.Errorf("%s %s: Content-Length %q, want %d", tc.method, tc.target, cl, tc.wantLen)
			}
		}
	}
}

func TestWebsocketEcho(t *testing.T) {
	ts := newScaleServer(t)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a fresh conn
	for _, m := range []struct {
		kind int
		data string
	}{{websocket.TextMessage, "ping"}, {websocket.BinaryMessage, "\x00\x01\x02"}, {websocket.TextMessage, ""}} {
		if err := c.WriteMessage(m.kind, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		kind, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if kind != m.kind || string(got) != m.data {
			t.Errorf("echo of (%d, %q) = (%d, %q)", m.kind, m.data, kind, got)
		}
	}
}

func TestH2C(t *testing.T) {
	ts := newScaleServer(t)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: p}, Timeout: 5 * time.Second}
	resp, err := c.Get(ts.URL + "/download?bytes=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || len(body) != 10 {
		t.Errorf("h2c GET: %s, %d bytes; want HTTP/2.0, 10 bytes", resp.Proto, len(body))
	}

	// Without -scale the backend speaks HTTP/1.1 only: an h2c client fails.
	plain := httptest.NewServer(http.HandlerFunc(serve))
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, plain.URL, nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("h2c GET to the HTTP/1.1-only backend: %s, want an error", resp.Proto)
	}
}
