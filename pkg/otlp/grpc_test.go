package otlp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the server accepts and answers gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// rawCodec hands the test server the message bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// grpcReply is one canned answer of the test gRPC collector: a status
// other than OK (with a RetryInfo detail when retryDelay >= 0), or resp.
type grpcReply struct {
	code       codes.Code
	msg        string
	retryDelay time.Duration // < 0: no RetryInfo
	resp       []byte
}

func ok(resp []byte) grpcReply { return grpcReply{resp: resp, retryDelay: -1} }
func fail(code codes.Code, msg string, retryDelay time.Duration) grpcReply {
	return grpcReply{code: code, msg: msg, retryDelay: retryDelay}
}

// grpcCollector is a grpc-go server answering every method with replies in
// turn (the last one repeated), recording requests and counting the bytes
// it reads.
type grpcCollector struct {
	srv     *grpc.Server
	addr    string
	rec     recorder
	replies []grpcReply
	read    atomic.Int64
	mu      sync.Mutex
	n       int
}

func startGRPCCollector(t *testing.T, creds credentials.TransportCredentials, replies ...grpcReply) *grpcCollector {
	t.Helper()
	c := &grpcCollector{replies: replies}
	opts := []grpc.ServerOption{grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(c.handle)}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	c.srv = grpc.NewServer(opts...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = lis.Addr().String()
	go func() { _ = c.srv.Serve(&countingListener{Listener: lis, n: &c.read}) }()
	t.Cleanup(c.srv.Stop)
	return c
}

func (c *grpcCollector) handle(_ any, stream grpc.ServerStream) error {
	var body []byte
	if err := stream.RecvMsg(&body); err != nil {
		return err
	}
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	rc := received{method: "POST", path: method, header: http.Header(md), body: body}
	if _, ok := stream.Context().Deadline(); ok {
		rc.proto = "deadline"
	}
	if p, ok := peer.FromContext(stream.Context()); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			rc.tlsPeerCerts = len(info.State.PeerCertificates)
		}
	}
	n := c.rec.add(rc)
	reply := c.replies[min(n, len(c.replies))-1]
	if reply.code != codes.OK {
		st := status.New(reply.code, reply.msg)
		if reply.retryDelay >= 0 {
			var err error
			if st, err = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(reply.retryDelay)}); err != nil {
				return err
			}
		}
		return st.Err()
	}
	resp := reply.resp
	return stream.SendMsg(&resp)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// grpcTransports are the two ways to reach the test collector: h2c with
// prior knowledge, and TLS with a client certificate.
var grpcTransports = []string{"h2c", "mtls"}

// startGRPCPair starts a collector for transport and returns it with the
// endpoint configuration that reaches it.
func startGRPCPair(t *testing.T, transport string, replies ...grpcReply) (*grpcCollector, string, map[string]string) {
	t.Helper()
	if transport == "h2c" {
		col := startGRPCCollector(t, nil, replies...)
		// Knative's configured endpoint, plain text.
		return col, "http://" + col.addr, map[string]string{}
	}
	pki := newTestPKI(t)
	col := startGRPCCollector(t, credentials.NewTLS(pki.serverTLS(true)), replies...)
	return col, "", map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           "https://" + col.addr,
		"OTEL_EXPORTER_OTLP_CERTIFICATE":        pki.caFile,
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": pki.clientCertFile,
		"OTEL_EXPORTER_OTLP_CLIENT_KEY":         pki.clientKeyFile,
	}
}

func TestGRPCExport(t *testing.T) {
	verifyNoLeaks(t)
	metricsPartial := mustMarshal(t, &colmetricpb.ExportMetricsServiceResponse{PartialSuccess: &colmetricpb.ExportMetricsPartialSuccess{RejectedDataPoints: 5, ErrorMessage: "stale"}})
	tracesPartial := mustMarshal(t, &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too big"}})
	tests := []struct {
		name         string
		sig          Signal
		gzip         bool
		replies      []grpcReply
		wantErr      string
		wantPartial  *PartialSuccessError
		wantCode     GRPCCode
		wantAttempts int
		wantWaits    []time.Duration
	}{
		{name: "ok", replies: []grpcReply{ok(nil)}, wantAttempts: 1},
		{name: "ok traces", sig: Traces, replies: []grpcReply{ok(nil)}, wantAttempts: 1},
		{name: "ok gzip", gzip: true, replies: []grpcReply{ok(nil)}, wantAttempts: 1},
		{
			name: "metrics partial success", replies: []grpcReply{ok(metricsPartial)},
			wantPartial: &PartialSuccessError{Signal: Metrics, Rejected: 5, Message: "stale"}, wantAttempts: 1,
		},
		{
			name: "traces partial success gzip", sig: Traces, gzip: true, replies: []grpcReply{ok(tracesPartial)},
			wantPartial: &PartialSuccessError{Signal: Traces, Rejected: 2, Message: "too big"}, wantAttempts: 1,
		},
		{
			name: "UNAVAILABLE then OK", replies: []grpcReply{fail(codes.Unavailable, "restarting", -1), ok(nil)},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second},
		},
		{
			name: "UNAVAILABLE with RetryInfo", replies: []grpcReply{fail(codes.Unavailable, "later", 12*time.Second), ok(nil)},
			wantAttempts: 2, wantWaits: []time.Duration{12 * time.Second},
		},
		{
			name: "retryable codes", replies: []grpcReply{
				fail(codes.Canceled, "", -1), fail(codes.DeadlineExceeded, "", -1), fail(codes.Aborted, "", -1),
				fail(codes.OutOfRange, "", -1), fail(codes.DataLoss, "", -1), ok(nil),
			},
			wantErr:      "gave up after 5 attempt(s) (the next retry, in 25.3125s, would pass the limit of 1m0s): collector answered gRPC status DATA_LOSS (15)",
			wantCode:     CodeDataLoss,
			wantAttempts: 5, wantWaits: []time.Duration{5 * time.Second, 7500 * time.Millisecond, 11250 * time.Millisecond, 16875 * time.Millisecond},
		},
		{
			name: "RESOURCE_EXHAUSTED without RetryInfo not retried", replies: []grpcReply{fail(codes.ResourceExhausted, "memory limiter", -1)},
			wantErr: "collector answered gRPC status RESOURCE_EXHAUSTED (8): memory limiter", wantCode: CodeResourceExhausted, wantAttempts: 1,
		},
		{
			name: "RESOURCE_EXHAUSTED with RetryInfo retried", replies: []grpcReply{fail(codes.ResourceExhausted, "memory limiter", 7*time.Second), ok(nil)},
			wantAttempts: 2, wantWaits: []time.Duration{7 * time.Second},
		},
		{
			name: "RESOURCE_EXHAUSTED with zero RetryInfo waits the backoff", replies: []grpcReply{fail(codes.ResourceExhausted, "", 0), ok(nil)},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second},
		},
		{
			name: "INVALID_ARGUMENT not retried, message decoded", replies: []grpcReply{fail(codes.InvalidArgument, "bad: 100% ünïcode\r\n\x00", -1)},
			wantErr: "collector answered gRPC status INVALID_ARGUMENT (3): bad: 100% ünïcode\r\n\x00", wantCode: 3, wantAttempts: 1,
		},
		{
			name: "UNAUTHENTICATED not retried", replies: []grpcReply{fail(codes.Unauthenticated, "who are you", 3*time.Second)},
			wantErr: "collector answered gRPC status UNAUTHENTICATED (16): who are you", wantCode: CodeUnauthenticated, wantAttempts: 1,
		},
	}
	for _, transport := range grpcTransports {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				sig := tt.sig
				if sig == "" {
					sig = Metrics
				}
				col, endpoint, env := startGRPCPair(t, transport, tt.replies...)
				env["OTEL_EXPORTER_OTLP_HEADERS"] = "x-tenant=acme,authorization=Bearer%20t,trace-bin=%01%02"
				if tt.gzip {
					env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
				}
				c, clk := newTestClient(t, sig, GRPC, endpoint, env, nil)
				body := append([]byte("\x0a\x03req"), bytes.Repeat([]byte("z"), 64<<10)...)
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
						t.Errorf("Export error = %q\nwant %q", err, tt.wantErr)
					}
					var se *StatusError
					if !errors.As(err, &se) || se.GRPCCode != tt.wantCode || se.HTTPStatus != 200 || se.Protocol != GRPC {
						t.Errorf("StatusError = %+v, want code %v", se, tt.wantCode)
					}
				case err != nil:
					t.Errorf("Export: %v", err)
				}
				if got := clk.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) > 0 || len(tt.wantWaits) > 0) {
					t.Errorf("waits = %v, want %v", got, tt.wantWaits)
				}
				reqs := col.rec.all()
				if len(reqs) != tt.wantAttempts {
					t.Fatalf("collector saw %d requests, want %d", len(reqs), tt.wantAttempts)
				}
				for _, r := range reqs {
					checkGRPCRequest(t, r, sig, body, transport == "mtls")
				}
				// 64 KiB of "z" compresses to almost nothing.
				if read := col.read.Load(); tt.gzip != (read < int64(len(body))*int64(len(reqs))) {
					t.Errorf("gzip %v, but the server read %d bytes for %d requests of %d", tt.gzip, read, len(reqs), len(body))
				}
			})
		}
	}
}

func checkGRPCRequest(t *testing.T, r received, sig Signal, body []byte, mTLS bool) {
	t.Helper()
	method := "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	if sig == Traces {
		method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	}
	if r.path != method {
		t.Errorf("method = %s, want %s", r.path, method)
	}
	for k, want := range map[string]string{
		"x-tenant": "acme", "authorization": "Bearer t", "trace-bin": "\x01\x02",
		"user-agent": userAgent(sig, GRPC), "content-type": "application/grpc",
	} {
		if got := r.header[k]; len(got) != 1 || got[0] != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if r.proto != "deadline" {
		t.Error("the call had no deadline (grpc-timeout)")
	}
	if !bytes.Equal(r.body, body) {
		t.Errorf("body of %d bytes, want %d", len(r.body), len(body))
	}
	if mTLS && r.tlsPeerCerts != 1 {
		t.Errorf("client certificates = %d, want 1", r.tlsPeerCerts)
	}
}

func TestGRPCExportContextStopsRetries(t *testing.T) {
	verifyNoLeaks(t)
	col := startGRPCCollector(t, nil, fail(codes.Unavailable, "down", -1))
	clk := &stuckClock{FakeClock: newSkipClock().FakeClock, waiting: make(chan time.Duration, 1)}
	c, _ := newTestClient(t, Metrics, GRPC, "http://"+col.addr, nil, func(c *Config) { c.Clock = clk })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan error)
	go func() { done <- c.Export(ctx, []byte("payload")) }()
	<-clk.waiting
	cancel()
	err := <-done
	c.Close()
	var se *StatusError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.GRPCCode != CodeUnavailable {
		t.Errorf("Export error = %v, want context.Canceled and UNAVAILABLE", err)
	}
	if n := len(col.rec.all()); n != 1 {
		t.Errorf("collector saw %d requests", n)
	}
}

func TestGRPCExportConnectionRefusedRetried(t *testing.T) {
	verifyNoLeaks(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c, clk := newTestClient(t, Metrics, GRPC, "http://"+addr, nil, func(c *Config) { c.Retry.MaxElapsedTime = 10 * time.Second })
	err = c.Export(context.Background(), []byte("payload"))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || len(clk.Waits()) != 1 {
		t.Errorf("Export error = %v after waits %v", err, clk.Waits())
	}
}

func TestGRPCExportUntrustedServer(t *testing.T) {
	verifyNoLeaks(t)
	pki, other := newTestPKI(t), newTestPKI(t)
	col := startGRPCCollector(t, credentials.NewTLS(pki.serverTLS(false)), ok(nil))
	c, clk := newTestClient(t, Metrics, GRPC, "", map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "https://" + col.addr,
		"OTEL_EXPORTER_OTLP_CERTIFICATE": other.caFile,
	}, nil)
	err := c.Export(context.Background(), []byte("payload"))
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || len(clk.Waits()) != 0 {
		t.Errorf("Export error = %v after waits %v", err, clk.Waits())
	}
}
