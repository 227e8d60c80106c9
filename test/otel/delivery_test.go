package otel

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var protocols = []string{protoGRPC, protoHTTP}

// serverRequests is the total count of http.server.request.duration in an
// export: how many non-probe requests it accounts for.
func serverRequests(md pmetric.Metrics) uint64 {
	m, ok := flatten(md).metric(scopeHTTP, "http.server.request.duration")
	if !ok || m.Type() != pmetric.MetricTypeHistogram {
		return 0
	}
	var n uint64
	for _, dp := range histPoints(m) {
		n += dp.Count()
	}
	return n
}

// sendPlain sends n plain GETs through s and returns what they must leave.
func (s *stack) sendPlain(n int) *tally {
	tl := newTally()
	calls := make([]call, n)
	for i := range calls {
		calls[i] = get("/status?code=200", 200)
	}
	s.send(tl, calls)
	return tl
}

// TestCompressionAndHeaders: OTEL_EXPORTER_OTLP_COMPRESSION=gzip compresses
// every export on the wire (a recording proxy in front of the receiver sees
// Content-Encoding: gzip and a gzip body over HTTP, grpc-encoding: gzip and
// compressed-flagged messages over gRPC), the receiver decodes it, and
// without the variable nothing is compressed. OTEL_EXPORTER_OTLP_HEADERS
// reaches the receiver as client metadata either way.
func TestCompressionAndHeaders(t *testing.T) {
	for _, proto := range protocols {
		for _, gzip := range []bool{true, false} {
			name := proto + "/uncompressed"
			if gzip {
				name = proto + "/gzip"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				col := startCollector(t, nil)
				target, h2c := col.httpAddr, false
				if proto == protoGRPC {
					target, h2c = col.grpcAddr, true
				}
				front := startWireProxy(t, target, h2c)
				endpoint := "http://" + front.addr
				if proto == protoHTTP {
					endpoint += "/v1/metrics"
				}
				env := map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-test-token=abc"}
				if gzip {
					env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
				}
				s := startStack(t, observabilityConfig(proto, endpoint, time.Second), env)
				tl := s.sendPlain(3)
				waitExport(t, col, "3 requests", tl.countsMatch)

				for i, e := range col.rec.all() {
					if got := e.metadata["x-test-token"]; len(got) != 1 || got[0] != "abc" {
						t.Errorf("export %d: x-test-token metadata = %q, want [abc]", i, got)
					}
				}
				// The proxy records a request once the receiver has answered
				// it, which may be just after the consumer saw it.
				exports := len(col.rec.all())
				var wire []wireRequest
				if err := poll(exportTimeout, func() (bool, string) {
					wire = front.requests()
					return len(wire) >= exports, fmt.Sprintf("the proxy recorded %d requests, the receiver consumed %d", len(wire), exports)
				}); err != nil {
					t.Fatal(err)
				}
				for i, w := range wire {
					checkWire(t, i, proto, gzip, w)
				}
			})
		}
	}
}

var gzipMagic = []byte{0x1f, 0x8b}

// checkWire checks how one export request was encoded on the wire.
func checkWire(t *testing.T, i int, proto string, gzip bool, w wireRequest) {
	t.Helper()
	if proto == protoHTTP {
		if w.path != "/v1/metrics" {
			t.Errorf("request %d: path %q, want /v1/metrics", i, w.path)
		}
		if w.contentType != "application/x-protobuf" {
			t.Errorf("request %d: Content-Type %q, want application/x-protobuf", i, w.contentType)
		}
		wantEnc := ""
		if gzip {
			wantEnc = "gzip"
		}
		if w.contentEncoding != wantEnc {
			t.Errorf("request %d: Content-Encoding %q, want %q", i, w.contentEncoding, wantEnc)
		}
		if got := bytes.HasPrefix(w.head, gzipMagic); got != gzip {
			t.Errorf("request %d: body starts % x; gzip magic: %t, want %t", i, w.head, got, gzip)
		}
		return
	}
	if w.path != "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" {
		t.Errorf("request %d: gRPC path %q", i, w.path)
	}
	// A gRPC message is a 1-byte compressed flag, a 4-byte length, then
	// the (compressed) message.
	if len(w.head) < 7 {
		t.Errorf("request %d: gRPC body too short: % x", i, w.head)
		return
	}
	if gzip {
		if w.grpcEncoding != "gzip" {
			t.Errorf("request %d: grpc-encoding %q, want gzip", i, w.grpcEncoding)
		}
		if w.head[0] != 1 || !bytes.Equal(w.head[5:7], gzipMagic) {
			t.Errorf("request %d: message not gzip-compressed: flag %d, starts % x", i, w.head[0], w.head[5:])
		}
	} else if w.head[0] != 0 {
		t.Errorf("request %d: message compressed (flag %d, grpc-encoding %q) though no compression was asked for", i, w.head[0], w.grpcEncoding)
	}
}

// TestRetryAfterRefusal: the collector refuses exports with a retryable
// error (gRPC UNAVAILABLE, HTTP 503) until two refused exports carried the
// requests; the requests still arrive in a later, accepted export.
func TestRetryAfterRefusal(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			refusedWithData := 0
			col := startCollector(t, func(md pmetric.Metrics) bool {
				if refusedWithData >= 2 {
					return false
				}
				if serverRequests(md) > 0 {
					refusedWithData++
				}
				return true
			})
			s := startStack(t, observabilityConfig(proto, col.endpoint(proto), time.Second), nil)
			tl := s.sendPlain(3)
			// Generous: exporters back off (the OTel SDK's first retry
			// waits about 5 s).
			err := poll(90*time.Second, func() (bool, string) {
				e, ok := col.rec.latest()
				if !ok {
					return false, fmt.Sprintf("nothing accepted yet; %d exports refused", len(col.rec.all()))
				}
				return tl.countsMatch(flatten(e.md))
			})
			if err != nil {
				t.Fatalf("the refused requests never arrived: %v", err)
			}
			var refused, withData int
			for _, e := range col.rec.all() {
				if e.refused {
					refused++
					if serverRequests(e.md) > 0 {
						withData++
					}
				}
			}
			if withData < 2 {
				t.Errorf("%d refused exports carried the requests, want 2 (%d refused in all)", withData, refused)
			}
			t.Logf("%d exports refused, %d accepted", refused, len(col.rec.accepted()))
		})
	}
}

// hangingListener accepts connections and never answers: a collector that
// is up but stuck.
type hangingListener struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func startHangingListener(t *testing.T) *hangingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingListener{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			go io.Copy(io.Discard, c) //nolint:errcheck // read and never answer
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

// TestDeadCollectorDoesNotSlowRequests: with a collector that accepts and
// never answers, or a port where nothing listens, requests through the
// proxy are as quick as ever while exports hang or fail, and SIGTERM still
// ends the process within the drain plus the 10 s flush timeout (§5.6).
func TestDeadCollectorDoesNotSlowRequests(t *testing.T) {
	const (
		window     = 3 * time.Second // traffic spans several export intervals
		requests   = 100
		maxLatency = time.Second // generous for a loaded 2-core machine
	)
	for _, proto := range protocols {
		for _, kind := range []string{"hanging", "closed"} {
			t.Run(proto+"/"+kind, func(t *testing.T) {
				t.Parallel()
				var hang *hangingListener
				var addr string
				if kind == "hanging" {
					hang = startHangingListener(t)
					addr = hang.ln.Addr().String()
				} else {
					addr = "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) // nothing listens there
				}
				endpoint := "http://" + addr
				if proto == protoHTTP {
					endpoint += "/v1/metrics"
				}
				s := startStack(t, observabilityConfig(proto, endpoint, time.Second), nil)
				if hang != nil {
					if err := poll(exportTimeout, func() (bool, string) {
						return hang.accepted.Load() > 0, "no export connection yet"
					}); err != nil {
						t.Fatalf("queue-proxy never tried to export: %v", err)
					}
				}
				// Requests spread over the window by a ticker (pacing, not
				// synchronisation), so that several exports hang or fail
				// meanwhile.
				tick := time.NewTicker(window / requests)
				defer tick.Stop()
				start := time.Now()
				var n int
				var slowest time.Duration
				for n = 0; n < requests; n++ {
					<-tick.C
					t0 := time.Now()
					code, body := s.mustDo(s.request(http.MethodGet, "/status?code=200", nil))
					d := time.Since(t0)
					if code != http.StatusOK {
						t.Fatalf("request %d: %d %q", n, code, body)
					}
					if d > maxLatency {
						t.Errorf("request %d took %v while exports %s", n, d, kind)
					}
					slowest = max(slowest, d)
				}
				t.Logf("%d requests in %v, slowest %v", n, time.Since(start).Round(time.Millisecond), slowest)
				if hang != nil {
					t.Logf("%d export connections accepted and left hanging", hang.accepted.Load())
				}

				t0 := time.Now()
				s.qp.Signal(t, syscall.SIGTERM)
				// Drain (1 s quiet period) + flush (10 s timeout) + slack.
				if code := s.qp.WaitExit(t, 25*time.Second); code != 0 {
					t.Errorf("queue-proxy exited with status %d after SIGTERM, want 0", code)
				}
				t.Logf("exited %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
			})
		}
	}
}

// TestFinalExportOnSIGTERM: with an export interval far longer than the
// test, requests sent right before SIGTERM reach the collector in the
// final export, which arrives before the process exits (§5.6, §6.3).
func TestFinalExportOnSIGTERM(t *testing.T) {
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			col := startCollector(t, nil)
			s := startStack(t, observabilityConfig(proto, col.endpoint(proto), 10*time.Minute), nil)
			tl := s.sendPlain(4)
			if n := len(col.rec.all()); n != 0 {
				t.Fatalf("%d exports before SIGTERM with a 10-minute interval; the test cannot tell the final one", n)
			}
			s.qp.Signal(t, syscall.SIGTERM)
			if code := s.qp.WaitExit(t, 30*time.Second); code != 0 {
				t.Errorf("queue-proxy exited with status %d, want 0", code)
			}
			// No polling: the export must have been consumed before the
			// process exited.
			all := col.rec.all()
			if len(all) == 0 {
				t.Fatal("no export arrived before queue-proxy exited")
			}
			last := all[len(all)-1]
			if ok, why := tl.countsMatch(flatten(last.md)); !ok {
				t.Errorf("the final export lacks the requests sent before SIGTERM: %s", why)
			}
			if !last.at.Before(s.qp.ExitedAt()) {
				t.Errorf("the final export arrived at %v, after the process exited at %v", last.at, s.qp.ExitedAt())
			}
		})
	}
}
