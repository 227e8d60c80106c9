package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// TestUseH2C proxies an h2c request and an HTTP/1.1 request through a
// ReverseProxy set up by useH2C, and checks that both reach the backend
// over HTTP/2.
func TestUseH2C(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto) //nolint:errcheck // test backend
	}))
	backend.Config.Protocols = new(http.Protocols)
	backend.Config.Protocols.SetUnencryptedHTTP2(true)
	backend.Start()
	defer backend.Close()

	target, _ := url.Parse(backend.URL)
	tr := &http.Transport{}
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	})
	useH2C(proxy.Config, tr)
	proxy.Start()
	defer proxy.Close()

	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		name      string
		client    *http.Client
		wantProto string // to the client
	}{
		{"h2c client", &http.Client{Transport: &http.Transport{Protocols: h2c}, Timeout: 5 * time.Second}, "HTTP/2.0"},
		{"HTTP/1.1 client", &http.Client{Timeout: 5 * time.Second}, "HTTP/1.1"},
	} {
		resp, err := tc.client.Get(proxy.URL)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != tc.wantProto || string(body) != "HTTP/2.0" {
			t.Errorf("%s: answered over %s, backend saw %q; want %s and HTTP/2.0", tc.name, resp.Proto, body, tc.wantProto)
		}
	}
}
