package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpcApp is a real grpc-go server on loopback.
type grpcApp struct {
	addr string
	mu   sync.Mutex
	uas  []string // User-Agent of each call
}

func startGRPC(t *testing.T, register func(*grpc.Server)) *grpcApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &grpcApp{addr: ln.Addr().String()}
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		app.mu.Lock()
		app.uas = append(app.uas, strings.Join(md.Get("user-agent"), ","))
		app.mu.Unlock()
		return h(ctx, req)
	}))
	if register != nil {
		register(s)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return app
}

func TestGRPCProbeHealthServer(t *testing.T) {
	hs := health.NewServer()
	app := startGRPC(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) })

	// Steps run in order against the same server; SetServingStatus flips
	// the answer between them.
	steps := []struct {
		name    string
		set     map[string]healthpb.HealthCheckResponse_ServingStatus
		service string
		wantErr string
	}{
		{name: "overall health, serving by default", service: ""},
		{name: "service serving", set: map[string]healthpb.HealthCheckResponse_ServingStatus{"svc": healthpb.HealthCheckResponse_SERVING}, service: "svc"},
		{name: "service not serving", set: map[string]healthpb.HealthCheckResponse_ServingStatus{"svc": healthpb.HealthCheckResponse_NOT_SERVING},
			service: "svc", wantErr: `service unhealthy (responded with "NOT_SERVING")`},
		{name: "service serving again", set: map[string]healthpb.HealthCheckResponse_ServingStatus{"svc": healthpb.HealthCheckResponse_SERVING}, service: "svc"},
		{name: "overall not serving", set: map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_NOT_SERVING},
			service: "", wantErr: "NOT_SERVING"},
		{name: "other service unaffected", service: "svc"},
		{name: "unknown service", service: "nope", wantErr: "code = NotFound desc = unknown service"},
		{name: "service unknown status", set: map[string]healthpb.HealthCheckResponse_ServingStatus{"odd": healthpb.HealthCheckResponse_SERVICE_UNKNOWN},
			service: "odd", wantErr: `"SERVICE_UNKNOWN"`},
	}
	calls := 0
	for _, s := range steps {
		for svc, st := range s.set {
			hs.SetServingStatus(svc, st)
		}
		p, err := NewGRPCProbe(app.addr, s.service)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = p.Probe(ctx)
		cancel()
		calls++
		t.Run(s.name, func(t *testing.T) { checkErr(t, err, s.wantErr) })
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.uas) != calls {
		t.Errorf("server saw %d calls, want %d", len(app.uas), calls)
	}
	for _, ua := range app.uas {
		if ua != GRPCProbeUserAgent {
			t.Errorf("User-Agent %q, want %q", ua, GRPCProbeUserAgent)
		}
	}
}

func TestGRPCProbeErrors(t *testing.T) {
	unimplemented := startGRPC(t, nil) // a gRPC server without the health service

	hang := make(chan struct{})
	defer close(hang)
	// h2c HTTP apps that are not (correct) gRPC servers.
	h2cApp := func(h http.HandlerFunc) string {
		s := httptest.NewServer(h2c.NewHandler(h, &http2.Server{}))
		t.Cleanup(s.Close)
		return s.Listener.Addr().String()
	}
	notGRPC := h2cApp(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	wrongType := h2cApp(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Content-Type", "text/plain") })
	hanging := h2cApp(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	// A gRPC-looking answer with a chosen body and trailer.
	fake := func(body []byte, status string) string {
		return h2cApp(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			w.Write(body)
			if status != "" {
				w.Header().Set("Grpc-Status", status)
			}
		})
	}
	frame := func(flag byte, msg []byte) []byte {
		b := []byte{flag, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
		return append(b, msg...)
	}
	serving := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)

	tests := []struct {
		name    string
		addr    string
		timeout time.Duration
		wantErr string
	}{
		{"unimplemented", unimplemented.addr, 0, "this server does not implement the grpc health protocol (grpc.health.v1.Health): rpc error: code = Unimplemented"},
		{"dead port", deadAddr(t), 0, "connection refused"},
		{"timeout", hanging, 20 * time.Millisecond, "timeout: gRPC health check did not complete within the probe timeout"},
		{"not a gRPC server", notGRPC, 0, "HTTP status 404 (not a gRPC server?)"},
		{"wrong content type", wrongType, 0, `content-type "text/plain"`},
		{"fake serving", fake(frame(0, serving), "0"), 0, ""},
		{"fake serving with unknown fields", fake(frame(0, protowire.AppendString(protowire.AppendTag(serving, 7, protowire.BytesType), "x")), "0"), 0, ""},
		{"no trailer", fake(frame(0, serving), ""), 0, "response without grpc-status"},
		{"error trailer", fake(nil, "14"), 0, "code = Unavailable desc = "},
		{"unknown code", fake(nil, "99"), 0, "code = Code(99)"},
		{"empty message", fake(frame(0, nil), "0"), 0, `responded with "UNKNOWN"`},
		{"compressed", fake(frame(1, serving), "0"), 0, "compressed response message"},
		{"bad framing", fake(frame(0, serving)[:6], "0"), 0, "response framing: length 2, got 1 bytes"},
		{"truncated", fake([]byte{0, 0}, "0"), 0, "truncated response message"},
		{"bad protobuf", fake(frame(0, []byte{0x08}), "0"), 0, "gRPC health check: "},
		{"too long", fake(make([]byte, maxGRPCResponse+10), ""), 0, "response longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewGRPCProbe(tt.addr, "")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			checkErr(t, p.Probe(ctx), tt.wantErr)
		})
	}
}

// TestGRPCProbeRequest checks the bytes on the wire against what grpc-go
// sends: path, headers and the framed HealthCheckRequest.
func TestGRPCProbeRequest(t *testing.T) {
	type got struct {
		method, path, ct, te, ua string
		body                     []byte
	}
	ch := make(chan got, 1)
	s := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		ch <- got{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Te"), r.Header.Get("User-Agent"), b.Bytes()}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0") // trailers-only OK: no message
	}), &http2.Server{}))
	defer s.Close()

	p, err := NewGRPCProbe(s.Listener.Addr().String(), "my.Service")
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, p.Probe(context.Background()), "OK without a response message")
	g := <-ch
	want := append([]byte{0, 0, 0, 0, 12, 0x0a, 10}, "my.Service"...)
	if g.method != "POST" || g.path != "/grpc.health.v1.Health/Check" || g.ct != "application/grpc" || g.te != "trailers" ||
		g.ua != GRPCProbeUserAgent || !bytes.Equal(g.body, want) {
		t.Errorf("request = %+v, want POST /grpc.health.v1.Health/Check application/grpc trailers %q body %x", g, GRPCProbeUserAgent, want)
	}
}

func FuzzParseHealthResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 8, 1})
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 2, 8, 1})
	f.Add([]byte{0, 0, 0, 0, 5, 0x3a, 1, 'x', 8, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		status, err := parseHealthResponse(b)
		framed := len(b) >= 5 && b[0] == 0 && int(binary.BigEndian.Uint32(b[1:5])) == len(b)-5
		if !framed {
			if err == nil {
				t.Fatalf("accepted malformed frame %x (status %d)", b, status)
			}
			return
		}
		// On a well-framed message we must agree with the real protobuf
		// decoder of grpc.health.v1.HealthCheckResponse.
		var want healthpb.HealthCheckResponse
		wantErr := proto.Unmarshal(b[5:], &want)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("message %x: our error %v, protobuf's %v", b[5:], err, wantErr)
		}
		if err == nil && int32(status) != int32(want.Status) {
			t.Fatalf("message %x: status %d, protobuf says %d", b[5:], status, want.Status)
		}
	})
}

func BenchmarkGRPCProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	defer s.Stop()
	p, err := NewGRPCProbe(ln.Addr().String(), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Probe(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGRPCProbeUserAgentIsGRPCGos: our probe's User-Agent is the one the
// real grpc-go client sends when the application sets Knative's
// kube-probe User-Agent (grpc.WithUserAgent), seen by a real grpc-go server.
func TestGRPCProbeUserAgentIsGRPCGos(t *testing.T) {
	if grpcGoVersion != grpc.Version {
		t.Errorf("grpcGoVersion %q, but go.mod's grpc-go is %q", grpcGoVersion, grpc.Version)
	}
	app := startGRPC(t, func(s *grpc.Server) { healthpb.RegisterHealthServer(s, health.NewServer()) })
	conn, err := grpc.NewClient(app.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(KubeProbeUserAgent))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewGRPCProbe(app.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.uas) != 2 || app.uas[0] != app.uas[1] || app.uas[1] != GRPCProbeUserAgent {
		t.Errorf("User-Agents seen (grpc-go client, ours) = %q, want both %q", app.uas, GRPCProbeUserAgent)
	}
}
