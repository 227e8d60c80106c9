package http

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

const proxyTarget = "127.0.0.1:8080"

func TestNewHeaderPruningReverseProxy(t *testing.T) {
	rp := NewHeaderPruningReverseProxy(proxyTarget, NoHostOverride, RevisionHeaders, false)

	if rp.Director == nil || rp.Rewrite != nil {
		t.Errorf("Director set = %v, Rewrite set = %v; want Director mode", rp.Director != nil, rp.Rewrite != nil)
	}
	if rp.FlushInterval != 0 {
		t.Errorf("FlushInterval = %v, want 0", rp.FlushInterval)
	}
	if rp.BufferPool == nil {
		t.Fatal("BufferPool is nil")
	}
	buf := rp.BufferPool.Get()
	if len(buf) != 32*1024 {
		t.Errorf("BufferPool buffer length = %d, want %d", len(buf), 32*1024)
	}
	rp.BufferPool.Put(buf)
	if rp.Transport != nil || rp.ErrorHandler != nil {
		t.Error("Transport and ErrorHandler must be left to the caller")
	}
}

func TestRevisionHeaders(t *testing.T) {
	want := []string{"Knative-Serving-Revision", "Knative-Serving-Namespace"}
	if !reflect.DeepEqual(RevisionHeaders, want) {
		t.Errorf("RevisionHeaders = %q, want %q", RevisionHeaders, want)
	}
}

func TestDirector(t *testing.T) {
	tests := []struct {
		name         string
		hostOverride string
		remove       []string
		https        bool
		header       http.Header
		wantURL      string
		wantHost     string
		wantHeader   http.Header
	}{{
		name:     "revision headers pruned, host kept",
		remove:   RevisionHeaders,
		header:   http.Header{"Knative-Serving-Revision": {"rev"}, "Knative-Serving-Namespace": {"ns"}, "X-Keep": {"1"}},
		wantURL:  "http://127.0.0.1:8080/a/b%2Fc?x=1&y=two%20words",
		wantHost: "inbound.example",
		wantHeader: http.Header{
			"X-Keep": {"1"},
		},
	}, {
		name:       "https",
		https:      true,
		header:     http.Header{},
		wantURL:    "https://127.0.0.1:8080/a/b%2Fc?x=1&y=two%20words",
		wantHost:   "inbound.example",
		wantHeader: http.Header{},
	}, {
		name:         "host override adds passthrough header",
		hostOverride: "override.example",
		remove:       RevisionHeaders,
		header:       http.Header{"Knative-Serving-Revision": {"rev"}},
		wantURL:      "http://127.0.0.1:8080/a/b%2Fc?x=1&y=two%20words",
		wantHost:     "override.example",
		wantHeader:   http.Header{"K-Passthrough-Lb": {"true"}},
	}, {
		name:     "remove list is matched canonically",
		remove:   []string{"x-remove-me", "KNATIVE-serving-revision"},
		header:   http.Header{"X-Remove-Me": {"1"}, "Knative-Serving-Revision": {"rev"}, "Knative-Serving-Namespace": {"ns"}},
		wantURL:  "http://127.0.0.1:8080/a/b%2Fc?x=1&y=two%20words",
		wantHost: "inbound.example",
		wantHeader: http.Header{
			"Knative-Serving-Namespace": {"ns"},
		},
	}, {
		name:       "nil remove list keeps everything",
		header:     http.Header{"Knative-Serving-Revision": {"rev"}},
		wantURL:    "http://127.0.0.1:8080/a/b%2Fc?x=1&y=two%20words",
		wantHost:   "inbound.example",
		wantHeader: http.Header{"Knative-Serving-Revision": {"rev"}},
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rp := NewHeaderPruningReverseProxy(proxyTarget, tc.hostOverride, tc.remove, tc.https)
			r := httptest.NewRequest(http.MethodGet, "/a/b%2Fc?x=1&y=two%20words", nil)
			r.Host = "inbound.example"
			r.Header = tc.header.Clone()

			rp.Director(r)

			if got := r.URL.String(); got != tc.wantURL {
				t.Errorf("URL = %q, want %q", got, tc.wantURL)
			}
			if r.Host != tc.wantHost {
				t.Errorf("Host = %q, want %q", r.Host, tc.wantHost)
			}
			if !reflect.DeepEqual(r.Header, tc.wantHeader) {
				t.Errorf("Header = %v, want %v", r.Header, tc.wantHeader)
			}
		})
	}
}

func TestNewHeaderPruningReverseProxyCopiesRemoveList(t *testing.T) {
	remove := []string{"X-Secret"}
	rp := NewHeaderPruningReverseProxy(proxyTarget, NoHostOverride, remove, false)
	remove[0] = "X-Other"

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header = http.Header{"X-Secret": {"1"}, "X-Other": {"2"}}
	rp.Director(r)

	want := http.Header{"X-Other": {"2"}}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("Header = %v, want %v", r.Header, want)
	}
}

func TestDirectorDoesNotAllocate(t *testing.T) {
	rp := NewHeaderPruningReverseProxy(proxyTarget, NoHostOverride, RevisionHeaders, false)
	r := httptest.NewRequest(http.MethodGet, "/path?q=1", nil)
	r.Header = http.Header{"Knative-Serving-Revision": {"rev"}, "User-Agent": {"curl"}}
	if n := testing.AllocsPerRun(100, func() { rp.Director(r) }); n != 0 {
		t.Errorf("Director allocations = %v, want 0", n)
	}
}

// TestProxyForwardsRequest sends requests through a real front server and
// proxy to a recording backend.
func TestProxyForwardsRequest(t *testing.T) {
	tests := []struct {
		name         string
		hostOverride string
		method       string
		path         string
		body         string
		chunked      bool // send the body with unknown length
		wantHost     string
		wantPassLB   []string
		wantCL       []string
	}{{
		name:     "path and query preserved",
		method:   http.MethodGet,
		path:     "/a/b%2Fc/?x=1&y=two%20words&x=3",
		wantHost: "app.example.com",
	}, {
		name:     "POST body preserved",
		method:   http.MethodPost,
		path:     "/submit",
		body:     "hello world",
		wantHost: "app.example.com",
		wantCL:   []string{"11"},
	}, {
		name:     "chunked PUT body preserved",
		method:   http.MethodPut,
		path:     "/upload",
		body:     strings.Repeat("0123456789", 10000),
		chunked:  true,
		wantHost: "app.example.com",
	}, {
		name:     "custom method preserved",
		method:   "PURGE",
		path:     "/cache",
		wantHost: "app.example.com",
	}, {
		name:         "host override",
		hostOverride: "override.example",
		method:       http.MethodGet,
		path:         "/x",
		wantHost:     "override.example",
		wantPassLB:   []string{"true"},
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			backend, _ := startServer(t, rec, false)
			rp := newTestProxy(t, backend.Listener.Addr().String(), tc.hostOverride, RevisionHeaders)
			front, _ := startServer(t, rp, false)

			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, err := http.NewRequest(tc.method, front.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "app.example.com"
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(respBody) != "ok" {
				t.Fatalf("response = %d %q, want 200 \"ok\"", resp.StatusCode, respBody)
			}

			got := rec.next(t)
			if got.Method != tc.method {
				t.Errorf("Method = %q, want %q", got.Method, tc.method)
			}
			if got.RequestURI != tc.path {
				t.Errorf("RequestURI = %q, want %q", got.RequestURI, tc.path)
			}
			if got.Host != tc.wantHost {
				t.Errorf("Host = %q, want %q", got.Host, tc.wantHost)
			}
			if got.Body != tc.body {
				t.Errorf("Body has %d bytes, want %d", len(got.Body), len(tc.body))
			}
			if v := got.Header["K-Passthrough-Lb"]; !reflect.DeepEqual(v, tc.wantPassLB) {
				t.Errorf("K-Passthrough-Lb = %q, want %q", v, tc.wantPassLB)
			}
			if v := got.Header["Content-Length"]; !reflect.DeepEqual(v, tc.wantCL) {
				t.Errorf("Content-Length = %q, want %q", v, tc.wantCL)
			}
		})
	}
}

// absent marks a header that must not reach the backend.
var absent []string

// TestProxyHeaders checks which request headers reach the user container,
// through a real front server (so RemoteAddr is 127.0.0.1).
func TestProxyHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header         // as written on the wire by the client
		want   map[string][]string // canonical key -> values; absent = must not arrive
	}{{
		name: "revision headers pruned, routing headers kept",
		header: http.Header{
			"Knative-Serving-Revision":      {"rev-1"},
			"Knative-Serving-Namespace":     {"ns"},
			"K-Proxy-Request":               {"activator"},
			"Knative-Serving-Tag":           {"blue"},
			"Knative-Serving-Default-Route": {"true"},
			"Forwarded":                     {"for=1.2.3.4;proto=https"},
			"K-Network-Probe":               {"other"},
		},
		want: map[string][]string{
			"Knative-Serving-Revision":      absent,
			"Knative-Serving-Namespace":     absent,
			"K-Proxy-Request":               {"activator"},
			"Knative-Serving-Tag":           {"blue"},
			"Knative-Serving-Default-Route": {"true"},
			"Forwarded":                     {"for=1.2.3.4;proto=https"},
			"K-Network-Probe":               {"other"},
		},
	}, {
		name: "lower-case revision headers on the wire are pruned",
		header: http.Header{
			"knative-serving-revision":  {"rev-1"},
			"knative-serving-namespace": {"ns"},
		},
		want: map[string][]string{
			"Knative-Serving-Revision":  absent,
			"Knative-Serving-Namespace": absent,
		},
	}, {
		name: "hop-by-hop headers removed",
		header: http.Header{
			"Connection":          {"X-Custom, keep-alive"},
			"X-Custom":            {"1"},
			"Keep-Alive":          {"timeout=5"},
			"Proxy-Connection":    {"keep-alive"},
			"Proxy-Authorization": {"Basic eDp5"},
			"Te":                  {"trailers, deflate"},
			"Upgrade":             {"foo/1"},
			"X-Kept":              {"1"},
		},
		want: map[string][]string{
			"Connection":          absent,
			"X-Custom":            absent,
			"Keep-Alive":          absent,
			"Proxy-Connection":    absent,
			"Proxy-Authorization": absent,
			"Te":                  {"trailers"},
			"Upgrade":             absent,
			"X-Kept":              {"1"},
		},
	}, {
		name:   "te without trailers removed",
		header: http.Header{"Te": {"deflate"}},
		want:   map[string][]string{"Te": absent},
	}, {
		name:   "x-forwarded-for set to the client ip",
		header: http.Header{},
		want:   map[string][]string{"X-Forwarded-For": {"127.0.0.1"}},
	}, {
		name:   "x-forwarded-for appended",
		header: http.Header{"X-Forwarded-For": {"1.2.3.4"}},
		want:   map[string][]string{"X-Forwarded-For": {"1.2.3.4, 127.0.0.1"}},
	}, {
		name:   "x-forwarded-for lines joined and appended",
		header: http.Header{"X-Forwarded-For": {"1.2.3.4", "::1"}},
		want:   map[string][]string{"X-Forwarded-For": {"1.2.3.4, ::1, 127.0.0.1"}},
	}, {
		name:   "other x-forwarded headers untouched",
		header: http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"orig.example"}},
		want: map[string][]string{
			"X-Forwarded-Proto": {"https"},
			"X-Forwarded-Host":  {"orig.example"},
		},
	}, {
		name:   "no user-agent stays absent",
		header: http.Header{"User-Agent": {""}}, // tells the client to send none
		want:   map[string][]string{"User-Agent": absent},
	}, {
		name:   "user-agent passed through",
		header: http.Header{"User-Agent": {"curl/8.5.0"}},
		want:   map[string][]string{"User-Agent": {"curl/8.5.0"}},
	}, {
		name:   "no accept-encoding added",
		header: http.Header{},
		want:   map[string][]string{"Accept-Encoding": absent},
	}, {
		name:   "accept-encoding passed through",
		header: http.Header{"Accept-Encoding": {"gzip, br"}},
		want:   map[string][]string{"Accept-Encoding": {"gzip, br"}},
	}}

	rec := newRecorder()
	backend, _ := startServer(t, rec, false)
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	front, _ := startServer(t, rp, false)
	client := newClient(t)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, front.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}

			got := rec.next(t)
			for k, want := range tc.want {
				if v := got.Header[k]; !reflect.DeepEqual(v, want) {
					t.Errorf("backend %s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

// outboundRecorder reports the header of every request the proxy hands to
// its transport.
type outboundRecorder struct {
	next http.RoundTripper
	got  chan http.Header
}

func (o *outboundRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case o.got <- r.Header.Clone():
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return o.next.RoundTrip(r)
}

// TestProxyRemovesHopByHopSetByInnerLayers covers hop-by-hop headers that
// net/http's server never leaves in Request.Header (Transfer-Encoding,
// Trailer) but an Option's handler could set: the proxy must still strip
// them. It looks at the request handed to the transport.
func TestProxyRemovesHopByHopSetByInnerLayers(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   map[string][]string
	}{{
		name:   "transfer-encoding",
		header: http.Header{"Transfer-Encoding": {"chunked"}},
		want:   map[string][]string{"Transfer-Encoding": absent},
	}, {
		name:   "trailer",
		header: http.Header{"Trailer": {"X-Checksum"}},
		want:   map[string][]string{"Trailer": absent},
	}, {
		name:   "proxy-authenticate",
		header: http.Header{"Proxy-Authenticate": {"Basic"}},
		want:   map[string][]string{"Proxy-Authenticate": absent},
	}, {
		name:   "headers named in several connection lines",
		header: http.Header{"Connection": {"X-A", "X-B"}, "X-A": {"1"}, "X-B": {"2"}, "X-C": {"3"}},
		want:   map[string][]string{"Connection": absent, "X-A": absent, "X-B": absent, "X-C": {"3"}},
	}, {
		name:   "te trailers kept",
		header: http.Header{"Te": {"trailers"}},
		want:   map[string][]string{"Te": {"trailers"}},
	}}

	backend, _ := startServer(t, newRecorder(), false)
	out := &outboundRecorder{next: NewProxyTransport(0), got: make(chan http.Header, 1)}
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	rp.Transport = out

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
			r.Header = tc.header.Clone()
			w := httptest.NewRecorder()
			rp.ServeHTTP(w, r)
			got := recv(t, out.got)
			if w.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", w.Code)
			}
			for k, want := range tc.want {
				if v := got[k]; !reflect.DeepEqual(v, want) {
					t.Errorf("outbound %s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestProxyStripsResponseHopByHop(t *testing.T) {
	backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=9")
		h.Set("X-End", "1")
		io.WriteString(w, "ok")
	}), false)
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	front, _ := startServer(t, rp, false)
	client := newClient(t)

	tests := []struct {
		name string
		url  string
		want map[string][]string
	}{{
		name: "backend sends them", // proves the proxied case is not vacuous
		url:  backend.URL,
		want: map[string][]string{"X-Hop": {"1"}, "Keep-Alive": {"timeout=9"}, "X-End": {"1"}},
	}, {
		name: "proxy strips them",
		url:  front.URL,
		want: map[string][]string{"X-Hop": absent, "Keep-Alive": absent, "X-End": {"1"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			for k, want := range tc.want {
				if v := resp.Header[k]; !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestProxyForwardsInformationalAndTrailers(t *testing.T) {
	backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	}), false)
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	front, _ := startServer(t, rp, false)

	var got1xx []int
	var gotLink []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		gotLink = append(gotLink, h.Get("Link"))
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, front.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Te", "trailers")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	if !reflect.DeepEqual(got1xx, []int{http.StatusEarlyHints}) || !reflect.DeepEqual(gotLink, []string{"</style.css>; rel=preload"}) {
		t.Errorf("1xx = %v with Link %q, want [103] with the backend's Link", got1xx, gotLink)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "body" {
		t.Errorf("response = %d %q, want 200 \"body\"", resp.StatusCode, body)
	}
	if v := resp.Trailer.Get("X-Checksum"); v != "abc" {
		t.Errorf("trailer X-Checksum = %q, want %q", v, "abc")
	}
}

func gzipped(tb testing.TB, s string) []byte {
	tb.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := io.WriteString(zw, s); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestProxyPassesCompressedBodyThrough checks that neither the proxy nor
// its transport negotiates or decodes compression.
func TestProxyPassesCompressedBodyThrough(t *testing.T) {
	payload := gzipped(t, strings.Repeat("compressible ", 100))
	gotAE := make(chan []string, 1)
	backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case gotAE <- r.Header["Accept-Encoding"]:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload)
	}), false)
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	front, _ := startServer(t, rp, false)
	client := newClient(t)

	tests := []struct {
		name           string
		acceptEncoding []string
	}{
		{name: "client asked for gzip", acceptEncoding: []string{"gzip"}},
		{name: "client asked for nothing", acceptEncoding: absent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, front.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.acceptEncoding != nil {
				req.Header["Accept-Encoding"] = tc.acceptEncoding
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			if ae := recv(t, gotAE); !reflect.DeepEqual(ae, tc.acceptEncoding) {
				t.Errorf("backend Accept-Encoding = %q, want %q", ae, tc.acceptEncoding)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
				t.Errorf("Content-Encoding = %q, want gzip", ce)
			}
			if !bytes.Equal(body, payload) {
				t.Errorf("body = %d bytes %q..., want the %d gzip bytes unchanged", len(body), body[:min(len(body), 8)], len(payload))
			}
		})
	}
}

// TestProxyStreams checks that each chunk the backend flushes reaches the
// client before the backend writes the next one.
func TestProxyStreams(t *testing.T) {
	tests := []struct {
		name          string
		contentType   string
		first, second string
	}{{
		name:        "server-sent events",
		contentType: "text/event-stream",
		first:       "data: one\n\n",
		second:      "data: two\n\n",
	}, {
		name:        "chunked octet stream",
		contentType: "application/octet-stream",
		first:       "chunk-1;",
		second:      "chunk-2;",
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var releaseOnce sync.Once
			releaseBackend := func() { releaseOnce.Do(func() { close(release) }) }
			// Runs before the servers' cleanup, so a failed test cannot
			// leave the backend handler (and thus srv.Close) waiting.
			defer releaseBackend()
			backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				io.WriteString(w, tc.first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, tc.second)
			}), false)
			rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
			front, _ := startServer(t, rp, false)

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tc.contentType)
			}

			// The backend is still holding the second chunk back, so
			// this read only succeeds if the proxy flushed the first.
			br := bufio.NewReader(resp.Body)
			first := make([]byte, len(tc.first))
			if _, err := io.ReadFull(br, first); err != nil {
				t.Fatalf("reading the first chunk: %v", err)
			}
			if string(first) != tc.first {
				t.Fatalf("first chunk = %q, want %q", first, tc.first)
			}
			releaseBackend()
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("reading the rest: %v", err)
			}
			if string(rest) != tc.second {
				t.Errorf("rest = %q, want %q", rest, tc.second)
			}
		})
	}
}

func TestProxyWebSocket(t *testing.T) {
	gotHeader := make(chan http.Header, 1)
	backendDone := make(chan struct{})
	upgrader := websocket.Upgrader{}
	backend, _ := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case gotHeader <- r.Header.Clone():
		case <-r.Context().Done():
			return
		}
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer close(backendDone)
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}), false)
	rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
	front, _ := startServer(t, rp, false)

	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+front.Listener.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status = %d, want 101", resp.StatusCode)
	}

	h := recv(t, gotHeader)
	if v := h.Get("Upgrade"); v != "websocket" {
		t.Errorf("backend Upgrade = %q, want websocket", v)
	}
	if v := h.Get("Connection"); !strings.EqualFold(v, "upgrade") {
		t.Errorf("backend Connection = %q, want Upgrade", v)
	}
	if v := h.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("backend X-Forwarded-For = %q, want 127.0.0.1", v)
	}

	for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		mt, echo, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if mt != websocket.BinaryMessage || string(echo) != msg {
			t.Errorf("echo = type %d, %d bytes; want binary, %d bytes", mt, len(echo), len(msg))
		}
	}

	// Closing the client side must close the proxied backend connection.
	conn.Close()
	recv(t, backendDone)
}

func TestProxyH2C(t *testing.T) {
	tests := []struct {
		name       string
		clientH2   bool
		backendH2C bool
		wantStatus int
		wantProto  string // what the backend saw
	}{{
		name:       "h2 client, h2c backend: h2c upstream",
		clientH2:   true,
		backendH2C: true,
		wantStatus: http.StatusOK,
		wantProto:  "HTTP/2.0",
	}, {
		name:       "http/1.1 client, h2c-capable backend: http/1.1 upstream",
		backendH2C: true,
		wantStatus: http.StatusOK,
		wantProto:  "HTTP/1.1",
	}, {
		name:       "h2 client, http/1.1-only backend: 502",
		clientH2:   true,
		wantStatus: http.StatusBadGateway,
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			backend, _ := startServer(t, rec, tc.backendH2C)
			rp := newTestProxy(t, backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders)
			front, _ := startServer(t, rp, true)

			client := newClient(t)
			wantClientProto := "HTTP/1.1"
			if tc.clientH2 {
				client = newH2CClient(t)
				wantClientProto = "HTTP/2.0"
			}
			req, err := http.NewRequest(http.MethodPost, front.URL+"/p?q=1", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "app.example"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			if resp.Proto != wantClientProto {
				t.Errorf("front answered %s, want %s", resp.Proto, wantClientProto)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != http.StatusOK {
				// The HTTP/1 server answers the h2 preface and closes, so
				// which error the h2c transport reports is a race: usually
				// "http2: failed reading the frame payload: ... looked like
				// an HTTP/1.1 header" (what Knative shows), sometimes
				// "http2: client conn could not be established" or a
				// broken pipe on the preface write.
				b := string(body)
				if !strings.HasSuffix(b, "\n") || strings.Count(b, "\n") != 1 ||
					!(strings.HasPrefix(b, "http2: ") || strings.Contains(b, "broken pipe") || strings.Contains(b, "connection reset by peer")) {
					t.Errorf("body = %q, want one h2c transport error line", body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type = %q, want text/plain; charset=utf-8", ct)
				}
				// The backend may have seen the h2 preface as a "PRI"
				// request, but never the request as HTTP/1.1.
				for drained := false; !drained; {
					select {
					case got := <-rec.got:
						if got.Method != "PRI" {
							t.Errorf("backend got a %s %s request, want none", got.Proto, got.Method)
						}
					default:
						drained = true
					}
				}
				return
			}
			if string(body) != "ok" {
				t.Errorf("body = %q, want ok", body)
			}
			got := rec.next(t)
			if got.Proto != tc.wantProto {
				t.Errorf("backend proto = %s, want %s", got.Proto, tc.wantProto)
			}
			if got.Host != "app.example" || got.RequestURI != "/p?q=1" || got.Body != "payload" {
				t.Errorf("backend got host %q uri %q body %q, want app.example /p?q=1 payload", got.Host, got.RequestURI, got.Body)
			}
			if v := got.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
				t.Errorf("backend X-Forwarded-For = %q, want 127.0.0.1", v)
			}
		})
	}
}
