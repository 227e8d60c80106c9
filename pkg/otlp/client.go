package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Client sends encoded OTLP export requests to one collector, over gRPC
// (HTTP/2, h2c or TLS, on net/http's own HTTP/2 client) or HTTP/protobuf.
// Export takes the serialized request, compresses it once if configured,
// and sends it, retrying retryable failures under Config.Retry; each
// attempt is bounded by Config.Timeout. It holds no queue: one body per
// Export is in flight, and the caller owns the body again when Export
// returns. A Client is safe for concurrent use.
//
// Export returns nil on success; a *PartialSuccessError when the collector
// accepted the request but rejected some items (not retried); otherwise an
// error wrapping a *StatusError when the collector refused the request, or
// the transport's error.
type Client struct {
	cfg     Config
	url     *url.URL // where requests go; for gRPC, the method's URL
	urlStr  string
	header  http.Header
	do      func(*http.Request) (*http.Response, error)
	idle    func() // closes idle connections
	retrier *retrier
	attempt func(ctx context.Context, payload []byte) error
}

// gRPC methods of the OTLP collector services.
const (
	metricsExportMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	tracesExportMethod  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
)

// maxResponseSize bounds a collector's answer (the OpenTelemetry HTTP
// exporters' default; grpc-go's default receive limit too).
const maxResponseSize = 4 << 20

// NewClient returns a Client for cfg. It does not connect.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Signal != Metrics && cfg.Signal != Traces {
		return nil, errors.New("otlp: unknown signal " + strconv.Quote(string(cfg.Signal)))
	}
	if cfg.Compression == "" {
		cfg.Compression = NoCompression
	}
	if cfg.Compression != NoCompression && cfg.Compression != Gzip {
		return nil, errors.New("otlp: unknown compression " + strconv.Quote(string(cfg.Compression)))
	}
	c := &Client{cfg: cfg, retrier: newRetrier(cfg.Retry, cfg.Clock)}
	rawURL := cfg.URL()
	switch cfg.Protocol {
	case GRPC:
		method := metricsExportMethod
		if cfg.Signal == Traces {
			method = tracesExportMethod
		}
		rawURL += method
		c.attempt = c.grpcAttempt
	case HTTPProtobuf:
		c.attempt = c.httpAttempt
	default:
		return nil, errors.New("otlp: unknown protocol " + strconv.Quote(string(cfg.Protocol)))
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, errors.New("otlp: bad endpoint " + strconv.Quote(rawURL))
	}
	c.url, c.urlStr = u, u.String()
	c.header = c.requestHeader()
	t := newTransport(&cfg)
	c.idle = t.CloseIdleConnections
	c.do = t.RoundTrip
	if cfg.Protocol == HTTPProtobuf {
		// http.Client follows redirects (307 and 308 keep the body).
		c.do = (&http.Client{Transport: t}).Do
	}
	return c, nil
}

// newTransport returns the connection pool: HTTP/2 only for gRPC (with
// prior knowledge on plain text), HTTP/1.1 or HTTP/2 by ALPN for
// HTTP/protobuf. Proxies from the environment are used except for h2c,
// which cannot cross an HTTP proxy.
func newTransport(cfg *Config) *http.Transport {
	p := new(http.Protocols)
	proxy := http.ProxyFromEnvironment
	switch {
	case cfg.Protocol == HTTPProtobuf:
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	case cfg.Insecure:
		p.SetUnencryptedHTTP2(true)
		proxy = nil
	default:
		p.SetHTTP2(true)
	}
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		tlsConfig = cfg.TLS.Clone()
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  proxy,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    10 * time.Second,
		DisableCompression:     true,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		Protocols:              p,
	}
}

// requestHeader is the header every request carries: the configured ones,
// then the protocol's, which win.
func (c *Client) requestHeader() http.Header {
	h := make(http.Header, len(c.cfg.Headers)+6)
	h.Set("User-Agent", c.cfg.UserAgent)
	for _, kv := range c.cfg.Headers {
		switch http.CanonicalHeaderKey(kv.Name) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host", "Content-Length":
			// Framing is the transport's business.
			continue
		}
		v := kv.Value
		if c.cfg.Protocol == GRPC {
			v = grpcMetadataValue(kv.Name, v)
		}
		h.Set(kv.Name, v)
	}
	if c.cfg.Protocol == GRPC {
		grpcHeader(h, c.cfg.Compression == Gzip)
		return h
	}
	h.Set("Content-Type", "application/x-protobuf")
	if c.cfg.Compression == Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	return h
}

// Config returns the configuration the Client was made with.
func (c *Client) Config() Config { return c.cfg }

// Export sends body, a serialized ExportMetricsServiceRequest or
// ExportTraceServiceRequest as the Config's Signal says. It returns when
// the collector has answered, or retries are exhausted, or ctx ends.
func (c *Client) Export(ctx context.Context, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	payload := body
	if c.cfg.Compression == Gzip {
		payload = gzipped(body)
	}
	return c.retrier.do(ctx, func(ctx context.Context) error {
		if c.cfg.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
			defer cancel()
		}
		return c.attempt(ctx, payload)
	})
}

// Close closes idle connections. The Client stays usable.
func (c *Client) Close() { c.idle() }

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(b)
	_ = w.Close()
	w.Reset(nil)
	gzipWriters.Put(w)
	return buf.Bytes()
}

// readBounded reads r to its end, failing beyond maxResponseSize bytes.
func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseSize+1))
	if err != nil {
		return b, err
	}
	if len(b) > maxResponseSize {
		return b[:maxResponseSize], errors.New("response larger than " + strconv.Itoa(maxResponseSize) + " bytes")
	}
	return b, nil
}

// transportError classifies an error of the round trip itself: a failed
// certificate check is final, anything else (refused or reset connections,
// timeouts) is worth a retry.
func transportError(u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	err = fmt.Errorf("post %s: %w", u.Redacted(), err)
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return err
	}
	return retryable(err, 0)
}

// PartialSuccessError reports items the collector rejected from an
// otherwise accepted export (Export*ServiceResponse.partial_success).
type PartialSuccessError struct {
	Signal Signal
	// Rejected is rejected_data_points (metrics) or rejected_spans
	// (traces).
	Rejected int64
	Message  string
}

func (e *PartialSuccessError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "empty message"
	}
	kind := " metric data points rejected)"
	if e.Signal == Traces {
		kind = " spans rejected)"
	}
	return "OTLP partial success: " + msg + " (" + strconv.FormatInt(e.Rejected, 10) + kind
}

// partialSuccessResult turns a decoded response into Export's result.
func (c *Client) partialSuccessResult(body []byte) error {
	ps, err := decodePartialSuccess(body)
	if err != nil {
		return errors.New("collector accepted the export but its response does not decode: " + err.Error())
	}
	if ps.rejected == 0 && ps.message == "" {
		return nil
	}
	return &PartialSuccessError{Signal: c.cfg.Signal, Rejected: ps.rejected, Message: ps.message}
}

// StatusError is a collector's refusal of an export.
type StatusError struct {
	Protocol Protocol
	// HTTPStatus is the response's HTTP status code.
	HTTPStatus int
	// GRPCCode is the gRPC status code (gRPC only; for a response that
	// is not gRPC, the code the gRPC spec maps its HTTP status to).
	GRPCCode GRPCCode
	// Message is grpc-message, or the google.rpc.Status message or the
	// text of an HTTP error body (truncated).
	Message string
}

func (e *StatusError) Error() string {
	var s string
	if e.Protocol == GRPC {
		s = "collector answered gRPC status " + e.GRPCCode.String()
	} else {
		s = "collector answered HTTP " + strconv.Itoa(e.HTTPStatus) + " " + http.StatusText(e.HTTPStatus)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
