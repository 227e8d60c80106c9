package otlp

import (
	"bytes"
	"compress/gzip"
	"io"
	"log"
	"net/http"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Helpers shared by the HTTP and gRPC client tests.

// newTestClient resolves a configuration as the queue-proxy would (endpoint
// from OBSERVABILITY_CONFIG, env) and makes a Client on a skipClock with
// randomization off.
func newTestClient(t *testing.T, sig Signal, p Protocol, endpoint string, env map[string]string, mutate func(*Config)) (*Client, *skipClock) {
	t.Helper()
	cfg, err := ResolveConfig(sig, string(p), endpoint, envFunc(env))
	if err != nil {
		t.Fatal("ResolveConfig:", err)
	}
	clk := newSkipClock()
	cfg.Clock = clk
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal("NewClient:", err)
	}
	c.retrier.jitter = func() float64 { return 0.5 }
	t.Cleanup(c.Close)
	return c, clk
}

// received is a request as a test server saw it.
type received struct {
	method, path, proto string
	header              http.Header
	body                []byte // decompressed
	tlsPeerCerts        int
}

// recorder collects what a test server receives.
type recorder struct {
	mu   sync.Mutex
	reqs []received
}

func (r *recorder) add(rc received) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, rc)
	return len(r.reqs)
}

func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal("gunzip:", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal("gunzip:", err)
	}
	return out
}

func TestNewClientRejects(t *testing.T) {
	good := Config{Signal: Metrics, Protocol: GRPC, Endpoint: "localhost:4317"}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"signal", func(c *Config) { c.Signal = "logs" }},
		{"protocol", func(c *Config) { c.Protocol = "http/json" }},
		{"compression", func(c *Config) { c.Compression = "zstd" }},
		{"endpoint", func(c *Config) { c.Endpoint = "" }},
	}
	if c, err := NewClient(good); err != nil {
		t.Fatal("NewClient(good):", err)
	} else {
		c.Close()
	}
	for _, tt := range tests {
		cfg := good
		tt.mutate(&cfg)
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient accepted a bad %s", tt.name)
		}
	}
}

func TestGzipped(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("otlp"), 10000)} {
		if got := gunzip(t, gzipped(in)); !bytes.Equal(got, in) {
			t.Errorf("gunzip(gzipped(%d bytes)) = %d bytes", len(in), len(got))
		}
	}
}

// discardLog silences a test server's error log (expected handshake
// failures).
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// verifyNoLeaks checks, after every other cleanup of t has run, that no
// goroutine is left.
func verifyNoLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}
