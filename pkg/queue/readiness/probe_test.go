package readiness

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Short aggressive-mode timings for tests. Attempts against loopback that
// fail, fail at once; testAttempt only bounds hanging ones.
const (
	testInterval = time.Millisecond
	testAttempt  = 2 * time.Second
	longPoll     = 5 * time.Second // never reached unless the code is wrong
	// failingPoll bounds the polling of a probe that keeps failing: long
	// enough that a loaded machine completes attempts (a shorter one made
	// the first attempt end in "context deadline exceeded" under load).
	failingPoll = 250 * time.Millisecond
)

// scriptedApp answers the n-th request (from 1) with script(n).
type scriptedApp struct {
	n      atomic.Int64
	script atomic.Value // func(n int64) int
	port   int
}

func newScriptedApp(t *testing.T, script func(n int64) int) *scriptedApp {
	a := &scriptedApp{}
	a.script.Store(script)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.n.Add(1)
		w.WriteHeader(a.script.Load().(func(int64) int)(n))
	}))
	t.Cleanup(s.Close)
	a.port = portOf(t, s.Listener.Addr())
	return a
}

func (a *scriptedApp) set(script func(n int64) int) { a.script.Store(script) }

func portOf(t testing.TB, addr net.Addr) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func deadPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return portOf(t, ln.Addr())
}

func always(code int) func(int64) int { return func(int64) int { return code } }

// firstN answers code for the first n requests, then 200.
func firstN(n int64, code int) func(int64) int {
	return func(i int64) int {
		if i <= n {
			return code
		}
		return http.StatusOK
	}
}

func httpProbe(port int) *Probe {
	return &Probe{HTTPGet: &HTTPGetAction{Port: Port{Number: int32(port)}, Scheme: "HTTP", Path: "/ready"}}
}

// newTestProber builds a Prober with test timings and an observed logger.
func newTestProber(t *testing.T, probes []*Probe, o Options, poll time.Duration) (*Prober, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	o.Logger = zap.New(core).Sugar()
	p, err := NewProber(probes, o)
	if err != nil {
		t.Fatalf("NewProber: %v", err)
	}
	p.interval, p.attemptTimeout, p.pollTimeout = testInterval, testAttempt, poll
	return p, logs
}

func TestProberAggressive(t *testing.T) {
	type call struct {
		script      func(int64) int // app behaviour from this call on; nil keeps it
		poll        time.Duration   // nil keeps longPoll
		want        bool
		attempts    int64 // exact number of requests the call made; 0: at least minAttempts
		minAttempts int64
	}
	tests := []struct {
		name      string
		threshold int32
		calls     []call
	}{{
		name:  "becomes ready after failures, in one call",
		calls: []call{{script: firstN(3, 503), want: true, attempts: 4}},
	}, {
		name:  "always 500: polls until the poll timeout",
		calls: []call{{script: always(500), poll: 30 * time.Millisecond, want: false, minAttempts: 2}},
	}, {
		name:      "successThreshold 3, counter kept across calls",
		threshold: 3,
		calls: []call{
			{script: always(200), want: true, attempts: 3},
			{want: true, attempts: 1},
		},
	}, {
		name:      "a failure resets the counter",
		threshold: 2,
		calls: []call{
			{script: always(200), want: true, attempts: 2},
			{script: always(500), want: false, attempts: 1},
			{script: always(200), want: true, attempts: 2},
		},
	}, {
		// Point 5 of the issue: before the first success Knative's polling,
		// after it one attempt decides a failure.
		name: "fail fast once seen ready",
		calls: []call{
			{script: firstN(2, 500), want: true, attempts: 3},
			{script: always(500), want: false, attempts: 1},
			{want: false, attempts: 1},
			{script: always(204), want: true, attempts: 1},
			{script: always(503), want: false, attempts: 1},
		},
	}, {
		name:      "once ready, a failure between successes decides at once",
		threshold: 3,
		calls: []call{
			{script: always(200), want: true, attempts: 3},
			{script: func(n int64) int {
				if n%2 == 0 {
					return 500
				}
				return 200
			}, want: false, minAttempts: 1},
			{script: always(200), want: true, attempts: 3},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newScriptedApp(t, always(200))
			pr := httpProbe(app.port)
			pr.SuccessThreshold = tt.threshold
			p, _ := newTestProber(t, []*Probe{pr}, Options{}, longPoll)
			for i, c := range tt.calls {
				if c.script != nil {
					app.set(c.script)
				}
				p.pollTimeout = longPoll
				if c.poll != 0 {
					p.pollTimeout = c.poll
				}
				before := app.n.Load()
				got := p.ProbeContainer()
				n := app.n.Load() - before
				if got != c.want {
					t.Errorf("call %d: ProbeContainer = %v, want %v", i, got, c.want)
				}
				if c.attempts != 0 && n != c.attempts {
					t.Errorf("call %d: %d attempts, want %d", i, n, c.attempts)
				}
				if n < c.minAttempts {
					t.Errorf("call %d: %d attempts, want at least %d", i, n, c.minAttempts)
				}
			}
		})
	}
}

func TestProberStandard(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer hanging.Close()

	tests := []struct {
		name     string
		script   func(int64) int
		port     int // instead of the app
		timeout  time.Duration
		want     bool
		attempts int64
	}{
		{name: "ready", script: always(200), want: true, attempts: 1},
		{name: "redirect is ready", script: always(302), want: true, attempts: 1},
		{name: "one failure decides", script: firstN(1, 500), want: false, attempts: 1},
		{name: "dead port", port: deadPort(t), want: false},
		{name: "timeout", port: portOf(t, hanging.Listener.Addr()), timeout: 20 * time.Millisecond, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newScriptedApp(t, always(200))
			if tt.script != nil {
				app.set(tt.script)
			}
			port := app.port
			if tt.port != 0 {
				port = tt.port
			}
			pr := httpProbe(port)
			pr.PeriodSeconds, pr.TimeoutSeconds, pr.SuccessThreshold = 1, 1, 3 // threshold is kubelet's business
			p, _ := newTestProber(t, []*Probe{pr}, Options{}, longPoll)
			if p.checks[0].aggressive || p.checks[0].timeout != time.Second {
				t.Fatalf("check = %+v, want standard mode with a 1 s timeout", p.checks[0])
			}
			if tt.timeout != 0 {
				p.checks[0].timeout = tt.timeout
			}
			if got := p.ProbeContainer(); got != tt.want {
				t.Errorf("ProbeContainer = %v, want %v", got, tt.want)
			}
			if n := app.n.Load(); tt.port == 0 && n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
		})
	}
}

func TestProberStandardDefaultTimeout(t *testing.T) {
	p, err := NewProber([]*Probe{{TCPSocket: &TCPSocketAction{Port: Port{Number: 1}}, PeriodSeconds: 5}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.checks[0]; c.aggressive || c.timeout != defaultTimeout {
		t.Errorf("timeoutSeconds 0: aggressive %v timeout %v, want standard with %v", c.aggressive, c.timeout, defaultTimeout)
	}
}

func TestProberTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	tests := []struct {
		name string
		port int
		host string
		want bool
	}{
		{"listening", portOf(t, ln.Addr()), "127.0.0.1", true},
		{"listening, host defaulted", portOf(t, ln.Addr()), "", true},
		{"dead port", deadPort(t), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := &Probe{TCPSocket: &TCPSocketAction{Port: Port{Number: int32(tt.port)}, Host: tt.host}}
			p, _ := newTestProber(t, []*Probe{pr}, Options{}, 20*time.Millisecond)
			if got := p.ProbeContainer(); got != tt.want {
				t.Errorf("ProbeContainer = %v, want %v", got, tt.want)
			}
		})
	}
	if accepted.Load() == 0 {
		t.Error("no TCP probe reached the listener")
	}
}

// TestProberGRPC drives a real grpc-go health server: NOT_SERVING until the
// third call, then SERVING; then NOT_SERVING again.
func TestProberGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := grpchealth.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	var calls atomic.Int64
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if calls.Add(1) == 3 {
			hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, hs)
	served := make(chan struct{})
	go func() { defer close(served); s.Serve(ln) }()
	defer func() { s.Stop(); <-served }()

	unimpl := grpc.NewServer()
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uServed := make(chan struct{})
	go func() { defer close(uServed); unimpl.Serve(uln) }()
	defer func() { unimpl.Stop(); <-uServed }()

	probe := func(port int, service string) *Probe {
		return &Probe{GRPC: &GRPCAction{Port: Port{Number: int32(port)}, Service: service}}
	}
	p, logs := newTestProber(t, []*Probe{probe(portOf(t, ln.Addr()), "app")}, Options{}, longPoll)
	if !p.ProbeContainer() || calls.Load() != 3 {
		t.Errorf("first call: want ready after 3 calls, made %d", calls.Load())
	}
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	if p.ProbeContainer() || calls.Load() != 4 {
		t.Errorf("NOT_SERVING after ready: want not ready after one call, made %d in all", calls.Load())
	}
	if l := logs.FilterMessage("Readiness probe failed").All(); len(l) != 1 || !strings.Contains(l[0].ContextMap()["error"].(string), "NOT_SERVING") {
		t.Errorf("failure log = %v", l)
	}

	for name, port := range map[string]int{"unimplemented": portOf(t, uln.Addr()), "dead port": deadPort(t)} {
		p, _ := newTestProber(t, []*Probe{probe(port, "")}, Options{}, 20*time.Millisecond)
		if p.ProbeContainer() {
			t.Errorf("%s: ready", name)
		}
	}
}

func TestProberHTTP2AutoDetection(t *testing.T) {
	var protos sync.Map
	h2cOnly := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
		if r.ProtoMajor != 2 {
			w.WriteHeader(http.StatusHTTPVersionNotSupported)
		}
	}), &http2.Server{}))
	defer h2cOnly.Close()
	port := portOf(t, h2cOnly.Listener.Addr())
	for _, tt := range []struct {
		auto bool
		want bool
	}{{true, true}, {false, false}} {
		pr := httpProbe(port)
		pr.PeriodSeconds, pr.TimeoutSeconds = 1, 1
		p, _ := newTestProber(t, []*Probe{pr}, Options{HTTP2AutoDetection: tt.auto}, longPoll)
		if got := p.ProbeContainer(); got != tt.want {
			t.Errorf("auto-detection %v: ready = %v, want %v", tt.auto, got, tt.want)
		}
	}
	if _, ok := protos.Load("HTTP/2.0"); !ok {
		t.Error("the app never saw HTTP/2")
	}
}

// TestProberSingleFlight: callers arriving during a run share it; the next
// call after it runs again (nothing cached).
func TestProberSingleFlight(t *testing.T) {
	const callers = 8
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var requests atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			arrived <- struct{}{}
			<-release
		}
	}))
	defer app.Close()

	p, _ := newTestProber(t, []*Probe{httpProbe(portOf(t, app.Listener.Addr()))}, Options{}, longPoll)
	var joined sync.WaitGroup
	joined.Add(callers - 1)
	p.onShare = joined.Done

	results := make(chan bool, callers)
	go func() { results <- p.ProbeContainer() }()
	<-arrived // the first caller's run is in flight
	for i := 1; i < callers; i++ {
		go func() { results <- p.ProbeContainer() }()
	}
	allJoined := make(chan struct{})
	go func() { joined.Wait(); close(allJoined) }()
	select {
	case <-allJoined: // every other caller waits for that run
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the other callers did not join the run in flight")
	}
	close(release)
	for i := 0; i < callers; i++ {
		if !<-results {
			t.Errorf("caller %d: not ready", i)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d callers made %d probe requests, want 1", callers, n)
	}
	if !p.ProbeContainer() || requests.Load() != 2 {
		t.Errorf("a later call made %d requests in all, want 2 (no caching)", requests.Load())
	}
}

func TestProberMultiContainer(t *testing.T) {
	ok := newScriptedApp(t, always(200))
	bad := newScriptedApp(t, always(500))
	tcp := &Probe{TCPSocket: &TCPSocketAction{Port: Port{Number: int32(ok.port)}}}
	tests := []struct {
		name     string
		probes   []*Probe
		want     bool
		wantName string // of the failure logged
	}{
		{"all ready", []*Probe{httpProbe(ok.port), tcp}, true, ""},
		{"sidecar failing", []*Probe{httpProbe(ok.port), tcp, httpProbe(bad.port)}, false, "probe 2 (httpGet)"},
		{"user container failing", []*Probe{httpProbe(bad.port), tcp}, false, "probe 0 (httpGet)"},
		{"dead sidecar", []*Probe{tcp, {TCPSocket: &TCPSocketAction{Port: Port{Number: int32(deadPort(t))}}}}, false, "probe 1 (tcpSocket)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, logs := newTestProber(t, tt.probes, Options{}, failingPoll)
			if got := p.ProbeContainer(); got != tt.want {
				t.Errorf("ProbeContainer = %v, want %v", got, tt.want)
			}
			failures := logs.FilterMessage("Readiness probe failed").All()
			if tt.want {
				if len(failures) != 0 {
					t.Errorf("failures logged: %v", failures)
				}
				return
			}
			if len(failures) != 1 || failures[0].ContextMap()["probe"] != tt.wantName || failures[0].Level != zapcore.InfoLevel {
				t.Errorf("failure logs = %+v, want one at info for %s", failures, tt.wantName)
			}
		})
	}
}

// TestProberMultiContainerConcurrent: the probes of a set run at the same
// time (each app waits for the other's request), and the first failure
// cancels the rest instead of waiting for them.
func TestProberMultiContainerConcurrent(t *testing.T) {
	var barrier sync.WaitGroup
	barrier.Add(2)
	meet := func(w http.ResponseWriter, r *http.Request) {
		barrier.Done()
		done := make(chan struct{})
		go func() { barrier.Wait(); close(done) }()
		select {
		case <-done:
		case <-r.Context().Done():
			w.WriteHeader(http.StatusRequestTimeout)
		}
	}
	a := httptest.NewServer(http.HandlerFunc(meet))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(meet))
	defer b.Close()
	pa, pb := httpProbe(portOf(t, a.Listener.Addr())), httpProbe(portOf(t, b.Listener.Addr()))
	pa.PeriodSeconds, pa.TimeoutSeconds, pb.PeriodSeconds, pb.TimeoutSeconds = 1, 1, 1, 1
	p, _ := newTestProber(t, []*Probe{pa, pb}, Options{}, longPoll)
	if !p.ProbeContainer() {
		t.Error("concurrent probes: not ready; were they run one after the other?")
	}

	arrived, cancelled := make(chan struct{}), make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
	}))
	defer hanging.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-arrived // fail only once the other probe is in flight
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	ph := httpProbe(portOf(t, hanging.Listener.Addr())) // aggressive, holds its attempt for 5 s
	pf := httpProbe(portOf(t, failing.Listener.Addr()))
	pf.PeriodSeconds, pf.TimeoutSeconds = 1, 1
	p, _ = newTestProber(t, []*Probe{ph, pf}, Options{}, longPoll)
	p.attemptTimeout = longPoll
	p.checks[0].threshold, p.checks[0].successes = 3, 1 // one success counted earlier
	start := time.Now()
	if p.ProbeContainer() {
		t.Error("a failing sidecar: ready")
	}
	<-cancelled // the hanging probe's request was cancelled...
	if d := time.Since(start); d > longPoll/2 {
		t.Errorf("answer took %v; the failure should have cancelled the hanging probe", d) // ...promptly
	}
	if c := p.checks[0]; c.successes != 1 || c.seenReady {
		t.Errorf("cancelling counted as an attempt: successes %d, seenReady %v; want 1, false", c.successes, c.seenReady)
	}
}

func TestProberLogs(t *testing.T) {
	app := newScriptedApp(t, always(500))
	p, logs := newTestProber(t, []*Probe{httpProbe(app.port)}, Options{}, failingPoll)
	type entry struct {
		level zapcore.Level
		msg   string
	}
	steps := []struct {
		script func(int64) int
		want   []entry
	}{
		{always(500), []entry{{zapcore.InfoLevel, "Readiness probe failed"}}},    // starting: expected
		{always(200), []entry{{zapcore.InfoLevel, "Readiness probe succeeded"}}}, // transition
		{nil, nil}, // still ready: quiet
		{always(500), []entry{{zapcore.WarnLevel, "Readiness probe failed"}}},    // lost readiness
		{always(200), []entry{{zapcore.InfoLevel, "Readiness probe succeeded"}}}, // recovered
	}
	for i, s := range steps {
		if s.script != nil {
			app.set(s.script)
		}
		before := logs.Len()
		p.ProbeContainer()
		got := logs.All()[before:]
		if len(got) != len(s.want) {
			t.Fatalf("step %d: logged %v, want %v", i, got, s.want)
		}
		for j, e := range got {
			if e.Level != s.want[j].level || e.Message != s.want[j].msg {
				t.Errorf("step %d: logged %v %q, want %v %q", i, e.Level, e.Message, s.want[j].level, s.want[j].msg)
			}
			if e.Message == "Readiness probe failed" {
				err, _ := e.ContextMap()["error"].(string)
				if !strings.HasPrefix(err, "aggressive probe error (failed ") || !strings.HasSuffix(err, "got status code: 500") {
					t.Errorf("step %d: error %q", i, err)
				}
			}
		}
	}
}

func TestProberNoProbes(t *testing.T) {
	p, err := NewProber(nil, Options{})
	if err != nil || !p.ProbeContainer() {
		t.Errorf("no probes: %v, %v; want always ready", p, err)
	}
}

func BenchmarkProberTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	p, err := NewProber([]*Probe{{TCPSocket: &TCPSocketAction{Port: Port{Number: int32(n)}, Host: "127.0.0.1"}, SuccessThreshold: 1}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !p.ProbeContainer() {
			b.Fatal("not ready")
		}
	}
}
