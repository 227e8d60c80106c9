package otel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// export is one ConsumeMetrics call of the receiver: one OTLP export
// request that the Collector decoded.
type export struct {
	md       pmetric.Metrics
	at       time.Time
	metadata map[string][]string // client metadata (request headers), lower-case keys
	refused  bool                // the consumer failed it with a retryable error
}

// recorder is the receiver's consumer: it keeps every export and can refuse
// exports with a retryable error, which the receiver answers with gRPC
// UNAVAILABLE / HTTP 503.
type recorder struct {
	mu      sync.Mutex
	refuse  func(md pmetric.Metrics) bool // nil: accept all; called under mu
	exports []export
}

func (r *recorder) consume(ctx context.Context, md pmetric.Metrics) error {
	e := export{md: pmetric.NewMetrics(), at: time.Now(), metadata: map[string][]string{}}
	md.CopyTo(e.md)
	info := client.FromContext(ctx)
	for k := range info.Metadata.Keys() {
		e.metadata[strings.ToLower(k)] = info.Metadata.Get(k)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil && r.refuse(e.md) {
		e.refused = true
		r.exports = append(r.exports, e)
		// A plain error is not permanent: the receiver maps it to
		// UNAVAILABLE (gRPC) and 503 (HTTP), both retryable for OTLP.
		return errors.New("test collector: refusing this export, try again")
	}
	r.exports = append(r.exports, e)
	return nil
}

// all returns every export so far, refused ones included.
func (r *recorder) all() []export {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]export(nil), r.exports...)
}

// accepted returns the exports the consumer accepted.
func (r *recorder) accepted() []export {
	var out []export
	for _, e := range r.all() {
		if !e.refused {
			out = append(out, e)
		}
	}
	return out
}

// latest returns the newest accepted export, if any.
func (r *recorder) latest() (export, bool) {
	a := r.accepted()
	if len(a) == 0 {
		return export{}, false
	}
	return a[len(a)-1], true
}

// collector is a running OTLP receiver of the real Collector with both
// protocols on free loopback ports and include_metadata on.
type collector struct {
	grpcAddr string // host:port of the gRPC server
	httpAddr string // host:port of the HTTP server (path /v1/metrics)
	rec      *recorder
}

// startCollector starts the receiver; refuse, if not nil, says which
// exports the consumer fails (it runs under the recorder's lock).
func startCollector(t *testing.T, refuse func(pmetric.Metrics) bool) *collector {
	t.Helper()
	rec := &recorder{refuse: refuse}
	next, err := consumer.NewMetrics(rec.consume)
	if err != nil {
		t.Fatal(err)
	}
	factory := otlpreceiver.NewFactory()
	for attempt := 1; ; attempt++ {
		c := &collector{
			grpcAddr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
			httpAddr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
			rec:      rec,
		}
		cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
		g := cfg.Protocols.GRPC.GetOrInsertDefault()
		g.NetAddr.Endpoint = c.grpcAddr
		g.IncludeMetadata = true
		h := cfg.Protocols.HTTP.GetOrInsertDefault()
		h.ServerConfig.NetAddr.Endpoint = c.httpAddr
		h.ServerConfig.IncludeMetadata = true

		var r receiver.Metrics
		r, err = factory.CreateMetrics(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, next)
		if err != nil {
			t.Fatalf("creating the OTLP receiver: %v", err)
		}
		err = r.Start(context.Background(), componenttest.NewNopHost())
		if err == nil {
			t.Cleanup(func() {
				if err := r.Shutdown(context.Background()); err != nil {
					t.Errorf("stopping the OTLP receiver: %v", err)
				}
			})
			return c
		}
		r.Shutdown(context.Background()) //nolint:errcheck // it did not start
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("starting the OTLP receiver: %v", err)
		}
	}
}

// grpcEndpoint and httpEndpoint are the requestMetrics.endpoint values for
// the two protocols.
func (c *collector) grpcEndpoint() string { return "http://" + c.grpcAddr }
func (c *collector) httpEndpoint() string { return "http://" + c.httpAddr + "/v1/metrics" }

// endpoint is the requestMetrics.endpoint for protocol.
func (c *collector) endpoint(protocol string) string {
	if protocol == protoGRPC {
		return c.grpcEndpoint()
	}
	return c.httpEndpoint()
}

// wireRequest is what a recording proxy saw of one request on the wire.
type wireRequest struct {
	path            string
	contentType     string
	contentEncoding string // HTTP Content-Encoding
	grpcEncoding    string // gRPC grpc-encoding
	head            []byte // the first bytes of the body as sent
}

// wireProxy is a reverse proxy in front of a receiver endpoint that records
// how each request was encoded on the wire, before the receiver decodes it.
// For gRPC it speaks cleartext HTTP/2 on both sides.
type wireProxy struct {
	addr string
	mu   sync.Mutex
	seen []wireRequest
}

// startWireProxy proxies to target ("host:port"); h2c selects cleartext
// HTTP/2 with prior knowledge (gRPC) on both sides.
func startWireProxy(t *testing.T, target string, h2c bool) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{addr: ln.Addr().String()}
	tr := &http.Transport{DisableCompression: true}
	var protos http.Protocols
	if h2c {
		protos.SetUnencryptedHTTP2(true)
		tr.Protocols = &protos
	} else {
		protos.SetHTTP1(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	u := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: tr,
	}
	srv := &http.Server{
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := &headRecorder{ReadCloser: r.Body}
			r.Body = body
			rp.ServeHTTP(w, r)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.seen = append(p.seen, wireRequest{
				path:            r.URL.Path,
				contentType:     r.Header.Get("Content-Type"),
				contentEncoding: r.Header.Get("Content-Encoding"),
				grpcEncoding:    r.Header.Get("Grpc-Encoding"),
				head:            body.head(),
			})
		}),
	}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *wireProxy) requests() []wireRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]wireRequest(nil), p.seen...)
}

// headRecorder keeps the first bytes read through it.
type headRecorder struct {
	io.ReadCloser
	mu  sync.Mutex
	buf []byte
}

const headLen = 16

func (h *headRecorder) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	h.mu.Lock()
	if room := headLen - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(n, room)]...)
	}
	h.mu.Unlock()
	return n, err
}

func (h *headRecorder) head() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.buf...)
}
