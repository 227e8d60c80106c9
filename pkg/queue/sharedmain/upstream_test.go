package sharedmain

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httputil"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	pkghttp "github.com/queue-proxy/queue-proxy/pkg/http"
	"github.com/queue-proxy/queue-proxy/pkg/http/upstream"
)

// TestUpstreamPathChoice checks when the lean path serves: only when
// nothing asks for net/http's (the README's Upstream paths).
func TestUpstreamPathChoice(t *testing.T) {
	roundTripper := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { return next.RoundTrip(r) })
	}
	tests := []struct {
		name    string
		cfg     func(*config)
		tracing tracingHooks
		opt     Option
		rp      func(*httputil.ReverseProxy)
		lean    bool
	}{
		{name: "defaults", lean: true},
		{name: "QP_UPSTREAM_PATH=auto", cfg: func(c *config) { c.UpstreamPath = upstreamAuto }, lean: true},
		{name: "an Option that only reads", opt: func(d *Defaults) { _ = d.Transport }, lean: true},
		{name: "QP_UPSTREAM_PATH=generic", cfg: func(c *config) { c.UpstreamPath = upstreamGeneric }},
		{name: "full duplex", cfg: func(c *config) { c.EnableHTTPFullDuplex = true }},
		{name: "client spans", tracing: tracingHooks{wrapTransport: roundTripper}},
		{name: "transport wrapped", opt: func(d *Defaults) { d.Transport = roundTripper(d.Transport) }},
		{name: "transport replaced", opt: func(d *Defaults) { d.Transport = http.DefaultTransport }},
		{name: "handler wrapped", opt: func(d *Defaults) {
			next := d.ProxyHandler
			d.ProxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(w, r) })
		}},
		{name: "ModifyResponse set", rp: func(rp *httputil.ReverseProxy) {
			rp.ModifyResponse = func(*http.Response) error { return nil }
		}},
		{name: "FlushInterval set", rp: func(rp *httputil.ReverseProxy) { rp.FlushInterval = -1 }},
		{name: "ErrorHandler replaced", rp: func(rp *httputil.ReverseProxy) {
			rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) {}
		}},
		{name: "Rewrite set", rp: func(rp *httputil.ReverseProxy) { rp.Rewrite = func(*httputil.ProxyRequest) {} }},
		{name: "BufferPool replaced", rp: func(rp *httputil.ReverseProxy) { rp.BufferPool = sliceBuffers{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config{UserPort: "8080", UpstreamPath: upstreamAuto}
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			rp := pkghttp.NewHeaderPruningReverseProxy("127.0.0.1:8080", pkghttp.NoHostOverride, pkghttp.RevisionHeaders, false)
			rp.ErrorHandler = pkghttp.ErrorHandler(zap.NewNop().Sugar())
			transport := pkghttp.NewProxyTransport(0)
			paths := newUpstreamPaths(cfg, rp, transport, metricsHooks{})
			d := &Defaults{Transport: transport, ProxyHandler: rp}
			if tc.opt != nil {
				tc.opt(d)
			}
			if tc.rp != nil {
				tc.rp(rp)
			}
			h, lean := paths.handler(d, tc.tracing)
			if lean != tc.lean {
				t.Fatalf("lean = %v, want %v", lean, tc.lean)
			}
			if _, isLean := h.(*upstream.Proxy); isLean != tc.lean {
				t.Errorf("handler %T, lean %v", h, lean)
			}
			if !tc.lean && reflect.ValueOf(h).Pointer() != reflect.ValueOf(d.ProxyHandler).Pointer() {
				t.Errorf("handler %T, want the Options' %T", h, d.ProxyHandler)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// sliceBuffers is a BufferPool of a type that cannot be compared (set as
// a value, so that comparing the field must not panic).
type sliceBuffers struct{ _ []byte }

func (sliceBuffers) Get() []byte { return make([]byte, 32<<10) }
func (sliceBuffers) Put([]byte)  {}

// TestRunOptionsKeepGenericPath checks, on a running queue-proxy, that an
// Option's transport or handler serves every request, bodies included.
func TestRunOptionsKeepGenericPath(t *testing.T) {
	tests := []struct {
		name string
		opt  func(calls *atomic.Int64) Option
	}{
		{"transport wrapped", func(calls *atomic.Int64) Option {
			return func(d *Defaults) {
				next := d.Transport
				d.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
					calls.Add(1)
					return next.RoundTrip(r)
				})
			}
		}},
		{"handler wrapped", func(calls *atomic.Int64) Option {
			return func(d *Defaults) {
				next := d.ProxyHandler
				d.ProxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					next.ServeHTTP(w, r)
				})
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			var hits, calls atomic.Int64
			app := countingApp(t, &hits)
			q := startQP(t, app, map[string]string{"CONTAINER_CONCURRENCY": "0"}, tc.opt(&calls))
			main := q.url(serverMain, "/")
			for i := range 3 {
				if r := get(t, main, nil); r.code != 200 || r.body != "ok" {
					t.Fatalf("GET %d: %d %q", i, r.code, r.body)
				}
			}
			req, _ := http.NewRequest(http.MethodPost, main, strings.NewReader("body"))
			if r := do(t, nil, req); r.code != 200 {
				t.Fatalf("POST: %d %q", r.code, r.body)
			}
			if calls.Load() != 4 || hits.Load() != 4 {
				t.Errorf("the Option saw %d requests, the app %d; want 4 and 4", calls.Load(), hits.Load())
			}
		})
	}
}

// TestRunClientMetricsPaths sends the same requests through the lean path
// and the generic one: the newest generation's http.client.* series are
// the same (labels, counts, request body sizes).
func TestRunClientMetricsPaths(t *testing.T) {
	series := map[string]string{}
	for _, path := range []string{upstreamAuto, upstreamGeneric} {
		t.Run(path, func(t *testing.T) {
			verifyNoLeaksClosingClients(t)
			clearMetricsEnv(t)
			var hits atomic.Int64
			app := countingApp(t, &hits)
			q := startQP(t, app, map[string]string{
				"CONTAINER_CONCURRENCY": "0",
				"QP_UPSTREAM_PATH":      path,
				"OBSERVABILITY_CONFIG":  `{"requestMetrics":{"protocol":"prometheus","endpoint":"127.0.0.1:0"}}`,
			})
			main := q.url(serverMain, "/")
			requests := []struct {
				method, body string
				header       map[string]string
			}{
				{"GET", "", nil},
				{"GET", "", map[string]string{"X-Code": "404"}},
				{"POST", "hello", nil},
				{"PUT", strings.Repeat("x", 3000), map[string]string{"X-Code": "500"}},
				{"HEAD", "", nil},
				{"PURGE", "", nil},
			}
			for _, r := range requests {
				req, _ := http.NewRequest(r.method, main, strings.NewReader(r.body))
				if r.body == "" {
					req.Body = http.NoBody
				}
				for k, v := range r.header {
					req.Header.Set(k, v)
				}
				do(t, nil, req)
			}
			if hits.Load() != int64(len(requests)) {
				t.Fatalf("the app saw %d requests, want %d", hits.Load(), len(requests))
			}
			fams := parseMetrics(t, get(t, q.url(serverUserMetrics, "/metrics"), nil).body)
			var b bytes.Buffer
			for _, name := range []string{"http_client_request_duration_seconds", "http_client_request_body_size_bytes"} {
				f := fams[name]
				if f == nil {
					t.Fatalf("no %s", name)
				}
				_, appPort, _ := net.SplitHostPort(app.Listener.Addr().String())
				var lines []string
				for _, m := range f.Metric {
					line := seriesLine(m, name == "http_client_request_body_size_bytes")
					if !strings.Contains(line, "server_port="+appPort+",") {
						t.Errorf("%s: series without the app's port %s: %s", name, appPort, line)
					}
					lines = append(lines, strings.Replace(line, "server_port="+appPort, "server_port=APP", 1))
				}
				if len(lines) != len(requests) {
					t.Errorf("%s: %d series, want one per request (%d):\n%s", name, len(lines), len(requests), strings.Join(lines, "\n"))
				}
				sort.Strings(lines)
				b.WriteString(name + "\n" + strings.Join(lines, "\n") + "\n")
			}
			series[path] = b.String()
		})
	}
	if series[upstreamAuto] != series[upstreamGeneric] {
		t.Errorf("client metrics differ\nlean:\n%s\ngeneric:\n%s", series[upstreamAuto], series[upstreamGeneric])
	}
}

// seriesLine is a histogram series' labels and count (and its sum when
// withSum: body sizes are exact, durations are not).
func seriesLine(m *dto.Metric, withSum bool) string {
	var labels []string
	for _, l := range m.Label {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(labels)
	s := strings.Join(labels, ",") + " count " + formatFloat(float64(m.GetHistogram().GetSampleCount()))
	if withSum {
		s += " sum " + formatFloat(m.GetHistogram().GetSampleSum())
	}
	return s
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
