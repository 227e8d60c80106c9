package http

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"
)

// TestNewProxyTransportProtocol checks that the inbound protocol picks the
// upstream protocol and that the transport adds and decodes nothing.
func TestNewProxyTransportProtocol(t *testing.T) {
	payload := gzipped(t, "hello hello hello")
	rec := make(chan received, 1)
	backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case rec <- received{Proto: r.Proto, Header: r.Header.Clone()}:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(payload)
	}), true)

	tests := []struct {
		name       string
		protoMajor int
		wantProto  string
	}{
		{name: "HTTP/1.1 request", protoMajor: 1, wantProto: "HTTP/1.1"},
		{name: "HTTP/2 request", protoMajor: 2, wantProto: "HTTP/2.0"},
	}
	rt := NewProxyTransport(0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, backend.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.ProtoMajor, req.ProtoMinor = tc.protoMajor, 0
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			got := recv(t, rec)
			if got.Proto != tc.wantProto {
				t.Errorf("backend proto = %s, want %s", got.Proto, tc.wantProto)
			}
			if v, ok := got.Header["Accept-Encoding"]; ok {
				t.Errorf("transport added Accept-Encoding %q", v)
			}
			if resp.Uncompressed || !bytes.Equal(body, payload) {
				t.Errorf("body was decoded (Uncompressed=%v, %d bytes), want the %d gzip bytes", resp.Uncompressed, len(body), len(payload))
			}
			if v := resp.Header["Content-Encoding"]; !reflect.DeepEqual(v, []string{"gzip"}) {
				t.Errorf("Content-Encoding = %q, want gzip", v)
			}
		})
	}
}

// TestNewProxyTransportIdlePool observes the idle pool size: after n
// concurrent requests complete, at most the pool size of their connections
// is kept, so a second round of n concurrent requests dials the rest anew.
func TestNewProxyTransportIdlePool(t *testing.T) {
	const n = 3
	tests := []struct {
		name         string
		cc           int
		wantNewDials int // in the second round
	}{
		{name: "cc=1 keeps one", cc: 1, wantNewDials: 2},
		{name: "cc=2 keeps two", cc: 2, wantNewDials: 1},
		{name: "cc=0 keeps 1000", cc: 0, wantNewDials: 0},
		{name: "negative cc keeps 1000", cc: -1, wantNewDials: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{})
			release := make(chan struct{})
			// stop frees a backend handler stuck by a failed test before
			// the servers' cleanup waits for it.
			stop := make(chan struct{})
			defer close(stop)
			backend, tl := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case arrived <- struct{}{}:
				case <-stop:
					return
				}
				select {
				case <-release:
				case <-stop:
					return
				}
				io.WriteString(w, "ok")
			}), false)
			rt := NewProxyTransport(tc.cc)

			// round runs n requests that are all in the backend at once.
			round := func() {
				t.Helper()
				errc := make(chan error, n)
				for range n {
					go func() {
						req, err := http.NewRequest(http.MethodGet, backend.URL, nil)
						if err != nil {
							errc <- err
							return
						}
						resp, err := rt.RoundTrip(req)
						if err != nil {
							errc <- err
							return
						}
						// Reading to EOF returns the connection to the
						// idle pool before Read returns.
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						errc <- err
					}()
				}
				for range n {
					recv(t, arrived)
				}
				for range n {
					release <- struct{}{}
				}
				for range n {
					if err := recv(t, errc); err != nil {
						t.Fatal(err)
					}
				}
			}

			round()
			if got := tl.Accepted(); got != n {
				t.Fatalf("first round dialed %d connections, want %d", got, n)
			}
			round()
			if got := tl.Accepted() - n; got != tc.wantNewDials {
				t.Errorf("second round dialed %d connections, want %d", got, tc.wantNewDials)
			}
		})
	}
}
