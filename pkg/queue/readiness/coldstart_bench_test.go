package readiness

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/queue/health"
)

// BenchmarkColdStart measures instant readiness: each iteration is a cold
// start, from the user app starting to listen until an activator probe,
// sent before that and held by aggressive probing, gets 200 "queue" from
// the probe handler. The app comes up at a random moment of Knative's 50 ms
// polling interval after probing has begun (the first attempt found the
// port closed). It reports the median and the 90th percentile of that time
// (p50-ms, p90-ms), and per cold start the connects to the app's port
// (dials/op, port polls and tcpSocket probes) and the probe requests that
// reached it (requests/op).
//
// Schedules: "knative" is Knative's (at once, then every 50 ms: this
// package before instant readiness), "port-poll" ours.
//
//	go test ./pkg/queue/readiness -run '^$' -bench ColdStart -benchtime=200x
func BenchmarkColdStart(b *testing.B) {
	for _, kind := range []string{"tcpSocket", "httpGet"} {
		for _, knative := range []bool{true, false} {
			name := kind + "/port-poll"
			if knative {
				name = kind + "/knative"
			}
			b.Run(name, func(b *testing.B) { benchColdStart(b, kind, knative) })
		}
	}
}

func benchColdStart(b *testing.B, kind string, knative bool) {
	var current atomic.Pointer[Prober]
	activator := httptest.NewServer(health.ProbeHandler(func() bool { return current.Load().ProbeContainer() }))
	defer activator.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	var (
		lat            []time.Duration
		dials, answers atomic.Int64
	)
	for b.Loop() {
		port := deadPort(b)
		pr := &Probe{TCPSocket: &TCPSocketAction{Port: Port{Number: int32(port)}, Host: localhost}}
		if kind == "httpGet" {
			pr = &Probe{HTTPGet: &HTTPGetAction{Port: Port{Number: int32(port)}, Host: localhost, Scheme: "HTTP", Path: "/"}}
		}
		p, err := NewProber([]*Probe{pr}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if knative {
			p.portPoll = 0
		}
		// Probing has begun once the first attempt is made.
		started := make(chan struct{})
		var once sync.Once
		begin := func() { once.Do(func() { close(started) }) }
		dial := p.dial
		p.dial = func(ctx context.Context, addr string) error {
			begin()
			dials.Add(1)
			return dial(ctx, addr)
		}
		if c := p.checks[0]; c.probe != nil {
			probe := c.probe
			c.probe = func(ctx context.Context) error { begin(); return probe(ctx) }
		}
		current.Store(p)

		type answer struct {
			code int
			body string
			err  error
			at   time.Time
		}
		answered := make(chan answer, 1)
		go func() {
			var a answer
			req, _ := http.NewRequest(http.MethodGet, activator.URL+"/healthz", nil)
			req.Header.Set("User-Agent", "Knative-Activator-Probe")
			req.Header.Set("K-Network-Probe", "queue")
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a.code, a.body = resp.StatusCode, string(body)
			}
			a.err, a.at = err, time.Now()
			answered <- a
		}()

		<-started
		time.Sleep(rand.N(PollInterval)) // the app's moment, unrelated to the probing rhythm
		start := time.Now()
		ln, err := net.Listen("tcp", net.JoinHostPort(localhost, strconv.Itoa(port)))
		if err != nil {
			b.Fatal(err)
		}
		app := &http.Server{
			Handler:           http.HandlerFunc(func(http.ResponseWriter, *http.Request) { answers.Add(1) }),
			ReadHeaderTimeout: time.Second,
		}
		served := make(chan struct{})
		go func() { defer close(served); app.Serve(ln) }()

		a := <-answered
		app.Close()
		<-served
		if a.err != nil || a.code != http.StatusOK || a.body != "queue" {
			b.Fatalf("activator probe: %d %q %v, want 200 queue", a.code, a.body, a.err)
		}
		lat = append(lat, a.at.Sub(start))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op") // the app's random start time, not a cost
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*9/10]), "p90-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(dials.Load())/float64(len(lat)), "dials/op")
	b.ReportMetric(float64(answers.Load())/float64(len(lat)), "requests/op")
}

// BenchmarkPortPoll is the cost of one port poll while the app is not
// listening: a loopback connect refused at once. At PortPollInterval it is
// paid a thousand times a second until the app listens.
func BenchmarkPortPoll(b *testing.B) {
	addr := net.JoinHostPort(localhost, strconv.Itoa(deadPort(b)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if health.TCPProbe(ctx, addr) == nil {
			b.Fatal("the port accepted")
		}
	}
}
