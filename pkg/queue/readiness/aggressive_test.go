package readiness

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/queue/health"
)

// appState is what a simulated app does at a moment.
type appState int

const (
	closed    appState = iota // the port refuses connections
	listening                 // it accepts; the probe answers 503
	ready                     // the probe succeeds
)

// simApp is a user container on a manual clock: the check's dial and probe
// act on its state at the clock's time and log each attempt as "d<ms><r>"
// (port poll or tcpSocket probe) or "p<ms><r>" (httpGet/grpc probe), with
// ms since base and r "+" (success) or "-".
type simApp struct {
	clk    *manualClock
	base   time.Time
	state  func(ms float64) appState
	events []string
	probes []time.Duration // start of every probe request that reached the app
}

func newSimApp() *simApp {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &simApp{clk: newManualClock(base), base: base}
}

func (a *simApp) now() time.Duration { return a.clk.Now().Sub(a.base) }

func (a *simApp) log(kind string, ok bool) {
	r := "-"
	if ok {
		r = "+"
	}
	ms := strconv.FormatFloat(float64(a.now())/float64(time.Millisecond), 'f', -1, 64)
	a.events = append(a.events, kind+ms+r)
}

// refused is a dial error as net.Dialer returns it for a closed port.
func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
}

func (a *simApp) dial(context.Context, string) error {
	ok := a.state(float64(a.now())/float64(time.Millisecond)) != closed
	a.log("d", ok)
	if !ok {
		return refused()
	}
	return nil
}

func (a *simApp) probe(context.Context) error {
	st := a.state(float64(a.now()) / float64(time.Millisecond))
	a.log("p", st == ready)
	switch st {
	case closed:
		return &url.Error{Op: "Get", URL: "http://127.0.0.1:8080/ready", Err: refused()}
	case listening:
		a.probes = append(a.probes, a.now())
		return &health.StatusError{Code: http.StatusServiceUnavailable}
	}
	a.probes = append(a.probes, a.now())
	return nil
}

// run makes one aggressive run of p's only check, advancing the clock
// whenever the run waits, and returns its error.
func (a *simApp) run(p *Prober) error {
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = p.checks[0].poll(context.Background(), p)
	}()
	for a.clk.advance(done) {
	}
	<-done
	return err
}

// simProbe returns an aggressive probe of kind on port 8080.
func simProbe(t *testing.T, kind string, threshold int32) *Probe {
	t.Helper()
	pr := &Probe{SuccessThreshold: threshold}
	switch kind {
	case "tcpSocket":
		pr.TCPSocket = &TCPSocketAction{Port: Port{Number: 8080}}
	case "httpGet":
		pr.HTTPGet = &HTTPGetAction{Port: Port{Number: 8080}, Scheme: "HTTP", Path: "ready"}
	case "grpc":
		pr.GRPC = &GRPCAction{Port: Port{Number: 8080}}
	default:
		t.Fatalf("kind %q", kind)
	}
	return pr
}

// simProber returns a Prober of pr driven by a, with the production
// timings.
func simProber(t *testing.T, a *simApp, pr *Probe) *Prober {
	t.Helper()
	p, err := NewProber([]*Probe{pr}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.clock, p.dial = a.clk, a.dial
	if c := p.checks[0]; !c.dialIsProbe {
		c.probe = a.probe
	}
	return p
}

// phases returns a state function: states[i] until bounds[i] (ms), then
// the last state.
func phases(bounds []float64, states ...appState) func(float64) appState {
	return func(ms float64) appState {
		for i, b := range bounds {
			if ms < b {
				return states[i]
			}
		}
		return states[len(states)-1]
	}
}

// steady returns a state function that is always s.
func steady(s appState) func(float64) appState { return func(float64) appState { return s } }

// TestAggressiveSchedule checks the schedule of check.next on a manual
// clock: port polls every 1 ms, the probe as soon as the port accepts, the
// back-off of failing probes, successThreshold spacing, the window's end,
// fail fast once ready, and Knative's schedule with port polling off.
func TestAggressiveSchedule(t *testing.T) {
	type run struct {
		state   func(ms float64) appState
		want    string // events, space-separated
		wantErr string // substring; "" wants success
	}
	tests := []struct {
		name      string
		kind      string
		threshold int32
		window    time.Duration // PollTimeout if 0
		knative   bool          // port polling off
		runs      []run
	}{{
		name: "tcpSocket: a connect every 1 ms, the accepting one is the probe",
		kind: "tcpSocket",
		runs: []run{{state: phases([]float64{3}, closed, ready), want: "d0- d1- d2- d3+"}},
	}, {
		name: "httpGet: port polled every 1 ms, then the probe at once",
		kind: "httpGet",
		runs: []run{{state: phases([]float64{3}, closed, ready), want: "d0- d1- d2- d3+ p3+"}},
	}, {
		name: "grpc: port polled every 1 ms, then the probe at once",
		kind: "grpc",
		runs: []run{{state: phases([]float64{2.5}, closed, ready), want: "d0- d1- d2- d3+ p3+"}},
	}, {
		name: "listening but not ready: the probe backs off 1, 2, 4, ... 50 ms",
		kind: "httpGet",
		runs: []run{{
			state: phases([]float64{2, 150}, closed, listening, ready),
			want:  "d0- d1- d2+ p2- p3- p5- p9- p17- p33- p65- p115- p165+",
		}},
	}, {
		name:      "successThreshold 3: successes 50 ms apart",
		kind:      "httpGet",
		threshold: 3,
		runs:      []run{{state: steady(ready), want: "d0+ p0+ p50+ p100+"}},
	}, {
		name:      "tcpSocket, successThreshold 2: successes 50 ms apart",
		kind:      "tcpSocket",
		threshold: 2,
		runs:      []run{{state: phases([]float64{1}, closed, ready), want: "d0- d1+ d51+"}},
	}, {
		name:      "a failure between successes restarts the count after a back-off",
		kind:      "httpGet",
		threshold: 2,
		runs: []run{{
			state: phases([]float64{40, 51}, ready, listening, ready),
			want:  "d0+ p0+ p50- p51+ p101+",
		}},
	}, {
		name: "the port closes again: back to port polling after the back-off",
		kind: "httpGet",
		runs: []run{{
			state: phases([]float64{1, 10}, listening, closed, ready),
			want:  "d0+ p0- p1- d3- d4- d5- d6- d7- d8- d9- d10+ p10+",
		}},
	}, {
		name:   "never listens: the window ends; the error is the probe's",
		kind:   "httpGet",
		window: 5 * time.Millisecond,
		runs: []run{{
			state:   steady(closed),
			want:    "d0- d1- d2- d3- d4-",
			wantErr: `aggressive probe error (failed 5 times): Get "http://127.0.0.1:8080/ready": dial tcp 127.0.0.1:8080: connect: connection refused`,
		}},
	}, {
		name:   "tcpSocket never listens: the dial error",
		kind:   "tcpSocket",
		window: 3 * time.Millisecond,
		runs: []run{{
			state:   steady(closed),
			want:    "d0- d1- d2-",
			wantErr: `aggressive probe error (failed 3 times): dial tcp 127.0.0.1:8080: connect: connection refused`,
		}},
	}, {
		name:   "the back-off carries over to the next run",
		kind:   "httpGet",
		window: 100 * time.Millisecond,
		runs: []run{{
			state:   steady(listening),
			want:    "d0+ p0- p1- p3- p7- p15- p31- p63-",
			wantErr: "aggressive probe error (failed 7 times): HTTP probe did not respond Ready, got status code: 503",
		}, {
			state:   steady(listening), // starts at 100 ms
			want:    "p113- p163-",
			wantErr: "(failed 2 times)",
		}},
	}, {
		name: "once ready: one attempt at once, no port poll, a failure ends the run",
		kind: "httpGet",
		runs: []run{
			{state: steady(ready), want: "d0+ p0+"},
			{state: steady(listening), want: "p0-", wantErr: "(failed 1 times): HTTP probe did not respond Ready, got status code: 503"},
			{state: steady(closed), want: "p0-", wantErr: `(failed 1 times): Get "http://127.0.0.1:8080/ready": dial tcp`},
			{state: steady(ready), want: "p0+"},
		},
	}, {
		name: "tcpSocket once ready: one connect decides",
		kind: "tcpSocket",
		runs: []run{
			{state: steady(ready), want: "d0+"},
			{state: steady(closed), want: "d0-", wantErr: "(failed 1 times): dial tcp"},
			{state: steady(ready), want: "d0+"},
		},
	}, {
		name:      "once ready, successThreshold: first attempt at once, then 50 ms apart",
		kind:      "httpGet",
		threshold: 2,
		runs: []run{
			{state: steady(ready), want: "d0+ p0+ p50+"},
			{state: steady(listening), want: "p50-", wantErr: "(failed 1 times)"},
			{state: steady(ready), want: "p50+ p100+"},
		},
	}, {
		name:    "Knative's schedule (port polling off): every 50 ms",
		kind:    "httpGet",
		knative: true,
		runs:    []run{{state: phases([]float64{3, 60}, closed, listening, ready), want: "p0- p50- p100+"}},
	}, {
		name:    "Knative's schedule, tcpSocket",
		kind:    "tcpSocket",
		knative: true,
		runs:    []run{{state: phases([]float64{3}, closed, ready), want: "d0- d50+"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newSimApp()
			p := simProber(t, a, simProbe(t, tt.kind, tt.threshold))
			if tt.window != 0 {
				p.pollTimeout = tt.window
			}
			if tt.knative {
				p.portPoll = 0
			}
			for i, r := range tt.runs {
				a.state, a.events = r.state, nil
				err := a.run(p)
				if got := strings.Join(a.events, " "); got != r.want {
					t.Errorf("run %d: attempts\n  %s\nwant\n  %s", i, got, r.want)
				}
				switch {
				case r.wantErr == "" && err != nil:
					t.Errorf("run %d: %v, want ready", i, err)
				case r.wantErr != "" && (err == nil || !strings.Contains(err.Error(), r.wantErr)):
					t.Errorf("run %d: error %v, want one containing %q", i, err, r.wantErr)
				}
			}
		})
	}
}

// TestAggressiveWindow: with the real 10 s window, an app that never
// listens is polled every millisecond until the window ends.
func TestAggressiveWindow(t *testing.T) {
	a := newSimApp()
	a.state = steady(closed)
	p := simProber(t, a, simProbe(t, "httpGet", 1))
	err := a.run(p)
	if n := len(a.events); n != int(PollTimeout/PortPollInterval) {
		t.Errorf("%d port polls, want %d", n, PollTimeout/PortPollInterval)
	}
	if last := a.events[len(a.events)-1]; last != "d9999-" {
		t.Errorf("last attempt %s, want d9999-", last)
	}
	if got := a.now(); got != PollTimeout {
		t.Errorf("run ended at %v, want %v", got, PollTimeout)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "aggressive probe error (failed 10000 times): Get ") {
		t.Errorf("error %v", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("error %v does not wrap the dial error", err)
	}
}

// TestAggressiveProbeRate checks the bound check.next states for an app
// that accepts connections but fails its probe for a minute (six 10 s
// runs): at most 7 probe requests in any 100 ms, and only the first six
// failures followed by pauses shorter than 50 ms (1, 2, 4, 8, 16, 32 ms).
// The flapping app is ready at random moments (successThreshold is out of
// its reach): successes must not restart the back-off.
func TestAggressiveProbeRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	flaps := make([]bool, 70_000) // 1-ms slots in which the app is ready
	for ms := range flaps {
		flaps[ms] = rng.IntN(3) == 0
	}
	tests := []struct {
		name      string
		state     func(ms float64) appState
		threshold int32
		minProbes int
	}{
		{name: "503 for a minute", state: steady(listening), threshold: 1, minProbes: 60_000 / 50},
		{name: "flapping", threshold: 100, minProbes: 60_000 / 50, state: func(ms float64) appState {
			if flaps[int(ms)] {
				return ready
			}
			return listening
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newSimApp()
			a.state = tt.state
			p := simProber(t, a, simProbe(t, "httpGet", tt.threshold))
			for range 6 {
				if err := a.run(p); err == nil {
					t.Fatal("ready")
				}
			}
			if a.now() < time.Minute {
				t.Fatalf("six runs ended at %v, want a minute", a.now())
			}
			probes := a.probes
			if len(probes) < tt.minProbes || len(probes) > 7+int(time.Minute/PollInterval) {
				t.Errorf("%d probe requests in a minute, want %d to %d", len(probes), tt.minProbes, 7+time.Minute/PollInterval)
			}
			most := 0
			for i, start := range probes {
				n := 0
				for _, s := range probes[i:] {
					if s-start > 100*time.Millisecond {
						break
					}
					n++
				}
				most = max(most, n)
			}
			if most > 7 {
				t.Errorf("%d probe requests within 100 ms, want at most 7", most)
			}
			var short []string
			for i := 1; i < len(probes); i++ {
				if d := probes[i] - probes[i-1]; d < PollInterval {
					short = append(short, d.String())
				}
			}
			if got := strings.Join(short, " "); got != "1ms 2ms 4ms 8ms 16ms 32ms" {
				if len(short) > 12 {
					got = strings.Join(short[:12], " ") + " ..."
				}
				t.Errorf("%d pauses shorter than %v: %s; want 1ms 2ms 4ms 8ms 16ms 32ms", len(short), PollInterval, got)
			}
		})
	}
}

// TestAggressiveProbeRateRealApp: a real app that accepts connections but
// answers 503 gets a bounded number of probe requests (real time: timers
// only ever fire late, so the upper bound holds on a loaded machine), and
// one port poll connection besides them.
func TestAggressiveProbeRateRealApp(t *testing.T) {
	var requests, conns atomic.Int64
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	app.Start()
	defer app.Close()
	p, err := NewProber([]*Probe{httpProbe(portOf(t, app.Listener.Addr()))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const window = 400 * time.Millisecond
	p.pollTimeout = window
	if p.ProbeContainer() {
		t.Fatal("ready")
	}
	// 7 requests in the first 63 ms, then one every 50 ms.
	most := int64(7 + (window-63*time.Millisecond)/PollInterval + 1)
	if n := requests.Load(); n < 2 || n > most {
		t.Errorf("%d probe requests in %v, want 2 to %d", n, window, most)
	}
	if n, r := conns.Load(), requests.Load(); n > r+1 {
		t.Errorf("%d connections for %d requests, want at most one port poll besides them", n, r)
	}
}

// TestProberPortAddr: every probe kind polls its own port.
func TestProberPortAddr(t *testing.T) {
	tests := []struct {
		probe       *Probe
		addr        string
		dialIsProbe bool
	}{
		{&Probe{TCPSocket: &TCPSocketAction{Port: Port{Number: 8080}}}, "127.0.0.1:8080", true},
		{&Probe{TCPSocket: &TCPSocketAction{Port: Port{Name: "8081"}, Host: "10.0.0.1"}}, "10.0.0.1:8081", true},
		{&Probe{HTTPGet: &HTTPGetAction{Port: Port{Number: 8082}, Scheme: "HTTP"}}, "127.0.0.1:8082", false},
		{&Probe{HTTPGet: &HTTPGetAction{Port: Port{Number: 8443}, Scheme: "HTTPS", Host: "::1"}}, "[::1]:8443", false},
		{&Probe{GRPC: &GRPCAction{Port: Port{Number: 9000}}}, "127.0.0.1:9000", false},
	}
	for _, tt := range tests {
		p, err := NewProber([]*Probe{tt.probe}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c := p.checks[0]; c.addr != tt.addr || c.dialIsProbe != tt.dialIsProbe || !c.portClosed {
			t.Errorf("%s: addr %q, dialIsProbe %v, portClosed %v; want %q, %v, true",
				tt.probe.kind(), c.addr, c.dialIsProbe, c.portClosed, tt.addr, tt.dialIsProbe)
		}
	}
}

// TestCouldNotConnect: the probes' errors for a closed port send the
// check back to port polling; answers and other failures do not.
func TestCouldNotConnect(t *testing.T) {
	dead := deadPort(t)
	app := newScriptedApp(t, always(503))
	deadAddr := net.JoinHostPort(localhost, strconv.Itoa(dead))
	grpcDead, err := health.NewGRPCProbe(deadAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	probe := func(port int) func(context.Context) error {
		hp, err := newHTTPProbe(&HTTPGetAction{Port: Port{Number: int32(port)}, Scheme: "HTTP"}, false)
		if err != nil {
			t.Fatal(err)
		}
		return hp.Probe
	}
	tests := []struct {
		name  string
		probe func(context.Context) error
		want  bool
	}{
		{"tcp, dead port", func(ctx context.Context) error { return health.TCPProbe(ctx, deadAddr) }, true},
		{"http, dead port", probe(dead), true},
		{"grpc, dead port", grpcDead.Probe, true},
		{"http, 503", probe(app.port), false},
		{"timeout", func(context.Context) error { return context.DeadlineExceeded }, false},
	}
	for _, tt := range tests {
		err := tt.probe(context.Background())
		if err == nil {
			t.Errorf("%s: no error", tt.name)
		} else if got := couldNotConnect(err); got != tt.want {
			t.Errorf("%s: couldNotConnect(%v) = %v, want %v", tt.name, err, got, tt.want)
		}
	}
}
