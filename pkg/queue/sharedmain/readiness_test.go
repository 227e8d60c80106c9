package sharedmain

import (
	"context"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	clocktest "k8s.io/utils/clock/testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue/readiness"
)

var probeLatencyRuns = flag.Int("probe-latency-runs", 5, "cold starts TestRunProbeLatency measures")

// portOfServer returns the port of an httptest server.
func portOfServer(s *httptest.Server) string {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p
}

func TestNewProber(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer live.Close()
	h2cOnly := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			w.WriteHeader(http.StatusHTTPVersionNotSupported)
		}
	}), &http2.Server{}))
	defer h2cOnly.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, dead, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	ports := strings.NewReplacer("LIVE", portOfServer(live), "DEAD", dead, "H2C", portOfServer(h2cOnly))
	tests := []struct {
		name      string
		probe     string
		multi     bool
		autoH2    bool
		want      bool
		wantErr   string
		wantCalls bool
	}{
		{name: "no probe: always ready", probe: "", want: true},
		{name: "TCP", probe: `{"tcpSocket":{"port":LIVE,"host":"127.0.0.1"},"successThreshold":1}`, want: true},
		{name: "HTTP", probe: `{"httpGet":{"port":LIVE,"host":"127.0.0.1","scheme":"HTTP","path":"ready"}}`, want: true},
		{name: "dead port, standard mode", probe: `{"tcpSocket":{"port":DEAD},"periodSeconds":1,"timeoutSeconds":1}`, want: false},
		{name: "multi-container, all ready", multi: true,
			probe: `[{"httpGet":{"port":LIVE,"scheme":"HTTP"}},{"tcpSocket":{"port":LIVE}}]`, want: true},
		{name: "multi-container, a sidecar down", multi: true,
			probe: `[{"httpGet":{"port":LIVE,"scheme":"HTTP"}},{"tcpSocket":{"port":DEAD},"periodSeconds":1,"timeoutSeconds":1}]`, want: false},
		{name: "h2c-only app, auto-detection on", autoH2: true,
			probe: `{"httpGet":{"port":H2C,"scheme":"HTTP"},"periodSeconds":1,"timeoutSeconds":1}`, want: true},
		{name: "h2c-only app, auto-detection off",
			probe: `{"httpGet":{"port":H2C,"scheme":"HTTP"},"periodSeconds":1,"timeoutSeconds":1}`, want: false},

		{name: "malformed", probe: `{"tcpSocket":`, wantErr: "SERVING_READINESS_PROBE: malformed probe JSON"},
		{name: "exec", probe: `{"exec":{"command":["true"]}}`, wantErr: "SERVING_READINESS_PROBE: exec probe not supported"},
		{name: "no handler", probe: `{"successThreshold":1}`, wantErr: "SERVING_READINESS_PROBE: no probe found"},
		{name: "named port", probe: `{"httpGet":{"port":"http","scheme":"HTTP"}}`, wantErr: `named port "http" cannot be resolved`},
		{name: "array without ENABLE_MULTI_CONTAINER_PROBES", probe: `[{"tcpSocket":{"port":LIVE}}]`, wantErr: "not an array"},
		{name: "object with ENABLE_MULTI_CONTAINER_PROBES", multi: true, probe: `{"tcpSocket":{"port":LIVE}}`, wantErr: "must be a JSON array"},
		{name: "exec sidecar", multi: true, probe: `[{"tcpSocket":{"port":LIVE}},{"exec":{}}]`, wantErr: "probe 1: exec probe not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config{
				ServingReadinessProbe:      ports.Replace(tt.probe),
				EnableMultiContainerProbes: tt.multi,
				EnableHTTP2AutoDetection:   tt.autoH2,
			}
			prober, err := newProber(cfg, zap.NewNop().Sugar())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("newProber error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("newProber: %v", err)
			}
			if got := prober(); got != tt.want {
				t.Errorf("prober() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRunReadinessAnswers: kubelet, the activator and the autoscaler get
// the answers of CONTRACT.md §3.9 from the user container's readiness;
// once it has been ready, a failure is answered after one probe attempt.
func TestRunReadinessAnswers(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusOK)
	var probes atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			probes.Add(1)
			if ua := r.Header.Get("User-Agent"); ua != "kube-probe//" || r.Header.Get("X-Probe") != "yes" {
				t.Errorf("readiness probe with User-Agent %q, X-Probe %q", ua, r.Header.Get("X-Probe"))
			}
			w.WriteHeader(int(status.Load()))
			return
		}
		w.Write([]byte("app"))
	}))
	defer app.Close()
	q := startQP(t, app, map[string]string{
		"SERVING_READINESS_PROBE": `{"httpGet":{"port":` + portOfServer(app) + `,"host":"127.0.0.1","scheme":"HTTP","path":"ready",` +
			`"httpHeaders":[{"name":"X-Probe","value":"yes"}]},"successThreshold":1}`,
	})
	probers := map[string]map[string]string{
		"kubelet":    {"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"},
		"activator":  {"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"},
		"autoscaler": {"User-Agent": "Knative-Autoscaling-Probe", "K-Network-Probe": "queue"},
	}
	steps := []struct {
		name   string
		status int
		code   int
		body   string
	}{
		{"ready", http.StatusOK, http.StatusOK, "queue"},
		{"app failing after ready", http.StatusInternalServerError, http.StatusServiceUnavailable, ""},
		{"app ready again", http.StatusNoContent, http.StatusOK, "queue"},
	}
	for _, s := range steps {
		status.Store(int64(s.status))
		for who, h := range probers {
			before := probes.Load()
			r := get(t, q.url(serverMain, "/healthz"), h)
			if r.code != s.code || r.body != s.body {
				t.Errorf("%s, %s: %d %q, want %d %q", s.name, who, r.code, r.body, s.code, s.body)
			}
			if n := probes.Load() - before; n != 1 {
				t.Errorf("%s, %s: %d readiness probe attempts, want 1", s.name, who, n)
			}
		}
	}
	if r := get(t, q.url(serverMain, "/"), map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "other"}); r.code != http.StatusBadRequest || r.body != "unexpected probe header value: other\n" {
		t.Errorf("wrong K-Network-Probe: %d %q", r.code, r.body)
	}
	if r := get(t, q.url(serverMain, "/"), nil); r.code != http.StatusOK || r.body != "app" {
		t.Errorf("ordinary request: %d %q", r.code, r.body)
	}
}

// TestRunReadinessStartupErrors: a probe the queue-proxy cannot run stops it
// at startup (exit 1) with the reason in the log.
func TestRunReadinessStartupErrors(t *testing.T) {
	for name, tt := range map[string]struct {
		probe, multi, want string
	}{
		"malformed JSON": {`{"tcpSocket":{"port":8080}`, "false", "malformed probe JSON"},
		"exec probe":     {`{"exec":{"command":["cat","/tmp/ready"]}}`, "false", "exec probe not supported"},
		"no handler":     {`{"periodSeconds":1}`, "false", "no probe found"},
		"null sidecar":   {`[{"tcpSocket":{"port":8080}},null]`, "true", "probe 1: null probe"},
	} {
		t.Run(name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "qp.log")
			env := baseEnv()
			env["SERVING_READINESS_PROBE"] = tt.probe
			env["ENABLE_MULTI_CONTAINER_PROBES"] = tt.multi
			env["SERVING_LOGGING_CONFIG"] = `{"level":"info","encoding":"json","outputPaths":["` + logPath + `"],"encoderConfig":{"messageKey":"message"}}`
			setEnv(t, env)
			err := run(context.Background(), runtimeDeps{clock: clocktest.NewFakeClock(time.Now())})
			if err == nil || !strings.Contains(err.Error(), "SERVING_READINESS_PROBE: "+tt.want) {
				t.Fatalf("run = %v, want an error naming %q", err, tt.want)
			}
			log, _ := os.ReadFile(logPath)
			if !strings.Contains(string(log), `"message":"Queue container failed to parse readiness probe"`) || !strings.Contains(string(log), tt.want) {
				t.Errorf("log lacks the parse failure:\n%s", log)
			}
		})
	}
}

// TestRunProbeLatency checks the cold-start path through the whole
// queue-proxy: an activator probe, sent before the user app listens and
// held by aggressive probing, gets 200 "queue" once it does; it logs the
// time from the app listening to that answer. Each run is a fresh
// queue-proxy. The app's port first has a listener that accepts the first
// connection (the first port poll) and closes, failing the probe, so that
// the app starts listening only once probing is under way, as at a real
// cold start, at a random moment of Knative's 50 ms polling interval.
// BenchmarkColdStart in pkg/queue/readiness reports the percentiles, for
// Knative's schedule and ours.
//
//	go test ./pkg/queue/sharedmain -run TestRunProbeLatency -v -probe-latency-runs=200
func TestRunProbeLatency(t *testing.T) {
	var lat []time.Duration
	for i := 0; i < *probeLatencyRuns; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) { lat = append(lat, coldStart(t)) })
	}
	if t.Failed() || len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	t.Logf("app listening -> activator probe 200 queue, %d runs: median %v, min %v, p90 %v, max %v",
		len(lat), lat[len(lat)/2], lat[0], lat[len(lat)*9/10], lat[len(lat)-1])
}

func coldStart(t *testing.T) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	q := startQP(t, echoApp(t), map[string]string{
		"SERVING_READINESS_PROBE": `{"httpGet":{"port":` + port + `,"host":"127.0.0.1","scheme":"HTTP","path":"/"},"successThreshold":1}`,
		"QP_DRAIN_QUIET_PERIOD":   "1s", // a quick shutdown at cleanup
	})

	type answer struct {
		r  response
		at time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, "/healthz"), nil)
		req.Header.Set("User-Agent", "Knative-Activator-Probe")
		req.Header.Set("K-Network-Probe", "queue")
		var a answer
		resp, err := bareClient.Do(req)
		if err != nil {
			t.Errorf("activator probe: %v", err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.r = response{code: resp.StatusCode, body: string(b)}
		}
		a.at = time.Now()
		answered <- a
	}()

	c, err := ln.Accept() // the first probe attempt...
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // ...fails
	ln.Close()

	// The app comes up at a moment unrelated to the probing rhythm: at a
	// random point of the next poll interval. (Not a synchronisation: the
	// result is awaited below either way.)
	time.Sleep(rand.N(readiness.PollInterval))
	start := time.Now()
	app, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: time.Second}
	go srv.Serve(app)
	defer srv.Close()

	a := <-answered
	if a.r.code != http.StatusOK || a.r.body != "queue" {
		t.Fatalf("activator probe: %d %q, want 200 queue", a.r.code, a.r.body)
	}
	return a.at.Sub(start)
}
