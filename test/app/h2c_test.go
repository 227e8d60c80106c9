package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestH2CPriorKnowledge(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	sum := sha256.Sum256([]byte("over h2c"))
	tests := []struct {
		method, path, body string
		wantContains       string
	}{
		{method: "GET", path: "/", wantContains: "protocol: HTTP/2.0\n"},
		{method: "GET", path: "/headers", wantContains: `"proto":"HTTP/2.0"`},
		{method: "POST", path: "/upload", body: "over h2c", wantContains: hex.EncodeToString(sum[:])},
		{method: "GET", path: "/stream?n=2&interval=0s", wantContains: "chunk 1\nchunk 2\n"},
		{method: "GET", path: "/status?code=202", wantContains: "status 202\n"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.ProtoMajor != 2 {
				t.Errorf("response protocol = %s, want HTTP/2", resp.Proto)
			}
			if !strings.Contains(body, tc.wantContains) {
				t.Errorf("body %q does not contain %q", body, tc.wantContains)
			}
		})
	}
}

func TestH2CUpgrade(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // bounds a broken test
	// HTTP2-Settings carries SETTINGS_MAX_CONCURRENT_STREAMS = 100.
	io.WriteString(conn, "GET /upgraded HTTP/1.1\r\nHost: example.test\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "h2c" {
		t.Fatalf("got %s with Upgrade %q, want 101 to h2c", resp.Status, resp.Header.Get("Upgrade"))
	}
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// The upgraded request is answered on stream 1.
	dec := hpack.NewDecoder(4096, nil)
	var status string
	var body bytes.Buffer
	for ended := false; !ended; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
			ended = f.StreamEnded()
		case *http2.DataFrame:
			body.Write(f.Data())
			ended = f.StreamEnded()
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			t.Fatalf("unexpected %v", f)
		}
	}
	if status != "200" || !strings.Contains(body.String(), "Hello from the demo user container!\n") ||
		!strings.Contains(body.String(), "path: /upgraded\n") {
		t.Errorf("got status %q body %q, want the greeting for /upgraded", status, body.String())
	}
}
