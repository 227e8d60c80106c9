package otlp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
)

// httpReply is one canned answer of a test OTLP/HTTP collector.
type httpReply struct {
	status int
	header map[string]string
	body   []byte
}

// newHTTPCollector serves replies in turn (the last one repeated) and
// records requests.
func newHTTPCollector(t *testing.T, rec *recorder, replies ...httpReply) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(collectorHandler(t, rec, replies))
	return srv
}

func collectorHandler(t *testing.T, rec *recorder, replies []httpReply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error("reading request:", err)
		}
		if r.Header.Get("Content-Encoding") == "gzip" {
			b = gunzip(t, b)
		}
		rc := received{method: r.Method, path: r.URL.Path, proto: r.Proto, header: r.Header.Clone(), body: b}
		if r.TLS != nil {
			rc.tlsPeerCerts = len(r.TLS.PeerCertificates)
		}
		n := rec.add(rc)
		reply := replies[min(n, len(replies))-1]
		for k, v := range reply.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(reply.status)
		_, _ = w.Write(reply.body)
	}
}

func TestHTTPExport(t *testing.T) {
	verifyNoLeaks(t)
	protobuf := map[string]string{"Content-Type": "application/x-protobuf"}
	metricsPartial := mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: 5, ErrorMessage: "stale"}})
	tracesPartial := mustMarshal(t, &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2}})
	statusBody := mustMarshal(t, &spb.Status{Code: 3, Message: "bad data point"})
	// The skip clock's now, for an HTTP-date Retry-After.
	now := newSkipClock().Now()

	tests := []struct {
		name         string
		sig          Signal
		env          map[string]string
		replies      []httpReply
		wantErr      string
		wantPartial  *PartialSuccessError
		wantStatus   int // of a StatusError
		wantAttempts int
		wantWaits    []time.Duration
	}{
		{name: "ok", replies: []httpReply{{status: 200}}, wantAttempts: 1},
		{name: "ok empty protobuf response", replies: []httpReply{{status: 200, header: protobuf, body: []byte{}}}, wantAttempts: 1},
		{name: "ok traces", sig: Traces, replies: []httpReply{{status: 200}}, wantAttempts: 1},
		{name: "ok gzip", env: map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, replies: []httpReply{{status: 200}}, wantAttempts: 1},
		{name: "202 accepted", replies: []httpReply{{status: 202}}, wantAttempts: 1},
		{
			name: "metrics partial success", replies: []httpReply{{status: 200, header: protobuf, body: metricsPartial}},
			wantPartial: &PartialSuccessError{Signal: Metrics, Rejected: 5, Message: "stale"}, wantAttempts: 1,
		},
		{
			name: "traces partial success", sig: Traces, replies: []httpReply{{status: 200, header: map[string]string{"Content-Type": "application/x-protobuf; charset=binary"}, body: tracesPartial}},
			wantPartial: &PartialSuccessError{Signal: Traces, Rejected: 2}, wantAttempts: 1,
		},
		{name: "partial success in JSON ignored", replies: []httpReply{{status: 200, header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{"partialSuccess":{}}`)}}, wantAttempts: 1},
		{
			name: "undecodable response", replies: []httpReply{{status: 200, header: protobuf, body: []byte{0x0a, 0x09}}},
			wantErr: "collector accepted the export but its response does not decode: protobuf: unexpected end of message", wantAttempts: 1,
		},
		{
			name: "400 not retried, Status message", replies: []httpReply{{status: 400, header: protobuf, body: statusBody}},
			wantErr: "collector answered HTTP 400 Bad Request: bad data point", wantStatus: 400, wantAttempts: 1,
		},
		{
			name: "401 not retried, text body", replies: []httpReply{{status: 401, body: []byte("  no token\n")}},
			wantErr: "collector answered HTTP 401 Unauthorized: no token", wantStatus: 401, wantAttempts: 1,
		},
		{
			name: "500 not retried", replies: []httpReply{{status: 500}},
			wantErr: "collector answered HTTP 500 Internal Server Error", wantStatus: 500, wantAttempts: 1,
		},
		{
			name: "503 with Retry-After then OK", replies: []httpReply{{status: 503, header: map[string]string{"Retry-After": "12"}}, {status: 200}},
			wantAttempts: 2, wantWaits: []time.Duration{12 * time.Second},
		},
		{
			name: "429 with short Retry-After waits the backoff", replies: []httpReply{{status: 429, header: map[string]string{"Retry-After": "1"}}, {status: 200}},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second},
		},
		{
			name: "429 with HTTP-date Retry-After", replies: []httpReply{{status: 429, header: map[string]string{"Retry-After": now.Add(20 * time.Second).Format(http.TimeFormat)}}, {status: 200}},
			wantAttempts: 2, wantWaits: []time.Duration{20 * time.Second},
		},
		{
			name: "502 and 504 retried", replies: []httpReply{{status: 502}, {status: 504}, {status: 200}},
			wantAttempts: 3, wantWaits: []time.Duration{5 * time.Second, 7500 * time.Millisecond},
		},
		{
			name: "503 until the limit", replies: []httpReply{{status: 503, body: []byte("overloaded")}},
			wantErr:      "gave up after 5 attempt(s) (the next retry, in 25.3125s, would pass the limit of 1m0s): collector answered HTTP 503 Service Unavailable: overloaded",
			wantStatus:   503,
			wantAttempts: 5, wantWaits: []time.Duration{5 * time.Second, 7500 * time.Millisecond, 11250 * time.Millisecond, 16875 * time.Millisecond},
		},
		{
			name: "Retry-After past the limit", replies: []httpReply{{status: 503, header: map[string]string{"Retry-After": "120"}}},
			wantErr:    "gave up after 1 attempt(s) (the next retry, in 2m0s, would pass the limit of 1m0s): collector answered HTTP 503 Service Unavailable",
			wantStatus: 503, wantAttempts: 1,
		},
		{
			name: "response too large", replies: []httpReply{{status: 200, header: protobuf, body: make([]byte, maxResponseSize+1)}},
			wantErr: "collector accepted the export but its response does not read: response larger than 4194304 bytes", wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" {
				sig = Metrics
			}
			rec := &recorder{}
			srv := newHTTPCollector(t, rec, tt.replies...)
			srv.Start()
			defer srv.Close()
			env := map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,authorization=Bearer%20t"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, clk := newTestClient(t, sig, HTTPProtobuf, srv.URL+"/otlp/v1/"+string(sig), env, nil)
			body := []byte("\x0a\x03request-" + tt.name)
			err := c.Export(context.Background(), body)
			c.Close()

			switch {
			case tt.wantPartial != nil:
				var ps *PartialSuccessError
				if !errors.As(err, &ps) || *ps != *tt.wantPartial {
					t.Errorf("Export error = %v, want %v", err, tt.wantPartial)
				}
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("Export error = %v\nwant %q", err, tt.wantErr)
				}
				var se *StatusError
				if got := errors.As(err, &se); got != (tt.wantStatus != 0) || (got && se.HTTPStatus != tt.wantStatus) {
					t.Errorf("StatusError = %+v, want status %d", se, tt.wantStatus)
				}
			case err != nil:
				t.Errorf("Export: %v", err)
			}
			if got := clk.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) > 0 || len(tt.wantWaits) > 0) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			reqs := rec.all()
			if len(reqs) != tt.wantAttempts {
				t.Fatalf("collector saw %d requests, want %d", len(reqs), tt.wantAttempts)
			}
			for _, r := range reqs {
				checkHTTPRequest(t, r, sig, body, tt.env["OTEL_EXPORTER_OTLP_COMPRESSION"] == "gzip")
			}
		})
	}
}

func checkHTTPRequest(t *testing.T, r received, sig Signal, body []byte, gzipped bool) {
	t.Helper()
	want := map[string]string{
		"Content-Type":  "application/x-protobuf",
		"User-Agent":    userAgent(sig, HTTPProtobuf),
		"X-Tenant":      "acme",
		"Authorization": "Bearer t",
	}
	if gzipped {
		want["Content-Encoding"] = "gzip"
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !gzipped && r.header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding = %q", r.header.Get("Content-Encoding"))
	}
	if r.method != http.MethodPost || r.path != "/otlp/v1/"+string(sig) {
		t.Errorf("request = %s %s", r.method, r.path)
	}
	if !bytes.Equal(r.body, body) {
		t.Errorf("body = %q, want %q", r.body, body)
	}
}

func TestHTTPExportRedirect(t *testing.T) {
	verifyNoLeaks(t)
	rec := &recorder{}
	target := newHTTPCollector(t, rec, httpReply{status: 200})
	target.Start()
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/otlp/v1/metrics", http.StatusPermanentRedirect))
	defer redirector.Close()
	c, _ := newTestClient(t, Metrics, HTTPProtobuf, redirector.URL+"/v1/metrics", nil, nil)
	if err := c.Export(context.Background(), []byte("payload")); err != nil {
		t.Fatal("Export:", err)
	}
	c.Close()
	if reqs := rec.all(); len(reqs) != 1 || string(reqs[0].body) != "payload" {
		t.Errorf("target saw %+v", reqs)
	}
}

func TestHTTPExportTLS(t *testing.T) {
	verifyNoLeaks(t)
	pki := newTestPKI(t)
	rec := &recorder{}
	srv := newHTTPCollector(t, rec, httpReply{status: 200})
	srv.TLS = pki.serverTLS(true)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":   srv.URL + "/otlp/v1/metrics",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        pki.caFile,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         pki.clientKeyFile,
	}
	c, _ := newTestClient(t, Metrics, HTTPProtobuf, "", env, nil)
	if err := c.Export(context.Background(), []byte("payload")); err != nil {
		t.Fatal("Export:", err)
	}
	c.Close()
	reqs := rec.all()
	if len(reqs) != 1 {
		t.Fatalf("collector saw %d requests", len(reqs))
	}
	if reqs[0].tlsPeerCerts != 1 || reqs[0].proto != "HTTP/2.0" {
		t.Errorf("client certificates = %d, proto = %s; want 1, HTTP/2.0", reqs[0].tlsPeerCerts, reqs[0].proto)
	}
}

func TestHTTPExportUntrustedServerNotRetried(t *testing.T) {
	verifyNoLeaks(t)
	pki, other := newTestPKI(t), newTestPKI(t)
	rec := &recorder{}
	srv := newHTTPCollector(t, rec, httpReply{status: 200})
	srv.TLS = pki.serverTLS(false)
	srv.Config.ErrorLog = discardLog()
	srv.StartTLS()
	defer srv.Close()
	c, clk := newTestClient(t, Metrics, HTTPProtobuf, srv.URL+"/v1/metrics", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": other.caFile}, nil)
	err := c.Export(context.Background(), []byte("payload"))
	c.Close()
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) {
		t.Errorf("Export error = %v, want a certificate verification error", err)
	}
	if len(clk.Waits()) != 0 || len(rec.all()) != 0 {
		t.Errorf("retried %d times", len(clk.Waits()))
	}
}

func TestHTTPExportConnectionRefusedRetried(t *testing.T) {
	verifyNoLeaks(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, clk := newTestClient(t, Metrics, HTTPProtobuf, url+"/v1/metrics", nil, func(c *Config) {
		c.Retry.MaxElapsedTime = 10 * time.Second
	})
	err := c.Export(context.Background(), []byte("payload"))
	want := "gave up after 2 attempt(s) (the next retry, in 7.5s, would pass the limit of 10s): post " + url + "/v1/metrics: dial tcp "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "connection refused") {
		t.Errorf("Export error = %v, want %q...connection refused", err, want)
	}
	if got := clk.Waits(); len(got) != 1 {
		t.Errorf("waits = %v", got)
	}
}

func TestHTTPExportAttemptTimeout(t *testing.T) {
	verifyNoLeaks(t)
	rec := &recorder{}
	release := make(chan struct{})
	ok := collectorHandler(t, rec, []httpReply{{status: 200}})
	var seen atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !seen.Swap(true) {
			// Hold the first attempt until the client gives up on it
			// (the server notices a closed connection once the body is
			// read).
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			close(release)
			return
		}
		ok(w, r)
	}))
	defer srv.Close()
	c, clk := newTestClient(t, Metrics, HTTPProtobuf, srv.URL+"/v1/metrics", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "500"}, nil)
	if err := c.Export(context.Background(), []byte("payload")); err != nil {
		t.Fatal("Export:", err)
	}
	c.Close()
	<-release
	if len(rec.all()) != 1 || len(clk.Waits()) != 1 {
		t.Errorf("second attempt: %d requests after %v", len(rec.all()), clk.Waits())
	}
}

func TestHTTPExportContextStopsRetries(t *testing.T) {
	verifyNoLeaks(t)
	rec := &recorder{}
	srv := newHTTPCollector(t, rec, httpReply{status: 503})
	srv.Start()
	defer srv.Close()
	clk := &stuckClock{FakeClock: newSkipClock().FakeClock, waiting: make(chan time.Duration, 1)}
	c, _ := newTestClient(t, Metrics, HTTPProtobuf, srv.URL+"/v1/metrics", nil, func(c *Config) { c.Clock = clk })
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() { done <- c.Export(ctx, []byte("payload")) }()
	<-clk.waiting
	stop := errors.New("shutting down")
	cancel(stop)
	err := <-done
	c.Close()
	if !errors.Is(err, stop) {
		t.Errorf("Export error = %v, want the context's cause", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.HTTPStatus != 503 {
		t.Errorf("Export error = %v, want the last StatusError", err)
	}
	if len(rec.all()) != 1 {
		t.Errorf("collector saw %d requests", len(rec.all()))
	}
	if err := c.Export(ctx, []byte("payload")); !errors.Is(err, context.Canceled) || len(rec.all()) != 1 {
		t.Errorf("Export on a done context = %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"1.5", 0},
		{" 7", 0},
		{"soon", 0},
		{"99999999999999999", math.MaxInt64},
		{"9223372036", 9223372036 * time.Second},
		{"9223372037", math.MaxInt64},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Friday, 02-Jan-26 03:05:05 GMT", time.Minute}, // RFC 850
		{"Fri Jan  2 03:04:15 2026", 10 * time.Second},  // asctime
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzRetryAfter checks that any Retry-After gives a delay of at least 0,
// and that seconds and dates read back.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Fri, 02 Jan 2026 03:04:35 GMT", "Friday, 02-Jan-26 03:04:35 GMT", "x", "99999999999999999999"} {
		f.Add(s, int64(30))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, secs int64) {
		if d := retryAfter(s, now); d < 0 {
			t.Errorf("retryAfter(%q) = %v", s, d)
		}
		if secs < 0 || secs > math.MaxInt64/int64(time.Second) {
			return
		}
		if got := retryAfter(strconv.FormatInt(secs, 10), now); got != time.Duration(secs)*time.Second {
			t.Errorf("retryAfter(%d) = %v", secs, got)
		}
		if secs < 1e9 {
			date := now.Add(time.Duration(secs) * time.Second).Format(http.TimeFormat)
			if got := retryAfter(date, now); got != time.Duration(secs)*time.Second {
				t.Errorf("retryAfter(%q) = %v, want %ds", date, got, secs)
			}
		}
	})
}

func TestTruncateText(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	got := truncateText(long)
	if len(got) > maxErrorText+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("truncateText = %q (%d bytes)", got, len(got))
	}
	if got := truncateText(" a\xffb "); got != "a\uFFFDb" {
		t.Errorf("truncateText = %q", got)
	}
}
