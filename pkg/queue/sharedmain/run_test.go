package sharedmain

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/protobuf/encoding/protowire"
	clocktest "k8s.io/utils/clock/testing"
)

// qp is a queue-proxy started by run() in-process on free ports, driven by
// a fake clock.
type qp struct {
	t      *testing.T
	clock  *clocktest.FakeClock
	addrs  map[string]string
	cancel context.CancelFunc
	done   chan error
}

// startQP runs queue-proxy in front of app with the Knative environment plus
// env, and waits until every server listens.
func startQP(t *testing.T, app *httptest.Server, env map[string]string, opts ...Option) *qp {
	t.Helper()
	return startQPWith(t, app, env, nil, opts...)
}

// startQPWith is startQP with a hook that may set more runtime deps.
func startQPWith(t *testing.T, app *httptest.Server, env map[string]string, deps func(*runtimeDeps), opts ...Option) *qp {
	t.Helper()
	e := baseEnv()
	_, userPort, _ := net.SplitHostPort(app.Listener.Addr().String())
	logPath := filepath.Join(t.TempDir(), "qp.log")
	for k, v := range map[string]string{
		"QUEUE_SERVING_PORT": "0", "QP_ADMIN_PORT": "0", "QP_METRICS_PORT": "0", "USER_PORT": userPort,
		// Knative's default readiness probe, aimed at the test's app.
		"SERVING_READINESS_PROBE": `{"tcpSocket":{"port":` + userPort + `,"host":"127.0.0.1"},"successThreshold":1}`,
		"SERVING_LOGGING_CONFIG":  `{"level":"debug","encoding":"json","outputPaths":["` + logPath + `"],"encoderConfig":{"messageKey":"message"}}`,
	} {
		e[k] = v
	}
	for k, v := range env {
		e[k] = v
	}
	setEnv(t, e)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("queue-proxy log:\n%s", b)
			}
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	q := &qp{t: t, clock: clocktest.NewFakeClock(time.Now()), cancel: cancel, done: make(chan error, 1)}
	listening := make(chan map[string]string, 1)
	rd := runtimeDeps{clock: q.clock, listening: func(m map[string]string) { listening <- m }}
	if deps != nil {
		deps(&rd)
	}
	go func() {
		q.done <- run(ctx, rd, opts...)
	}()
	select {
	case q.addrs = <-listening:
	case err := <-q.done:
		t.Fatalf("run returned before listening: %v", err)
	}
	t.Cleanup(func() {
		q.cancel()
		q.stepUntilDone(t)
	})
	return q
}

// url returns http://<server address><path>.
func (q *qp) url(server, path string) string {
	_, port, _ := net.SplitHostPort(q.addrs[server])
	return "http://127.0.0.1:" + port + path
}

// stepUntilDone advances the fake clock until run returns (bounded).
func (q *qp) stepUntilDone(t *testing.T) error {
	t.Helper()
	for i := 0; i < 1000; i++ {
		select {
		case err := <-q.done:
			q.done <- err // keep it for later callers
			return err
		case <-time.After(time.Millisecond):
			q.clock.Step(time.Second)
		}
	}
	t.Fatal("run did not return")
	return nil
}

// waitForWaiters blocks until the fake clock has at least n waiters.
func (q *qp) waitForWaiters(n int) {
	q.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.clock.Waiters() < n {
		if time.Now().After(deadline) {
			q.t.Fatalf("fake clock has %d waiters, want %d", q.clock.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type response struct {
	code   int
	body   string
	header http.Header
}

// bareClient sends only the headers a test sets: no Accept-Encoding (compression
// off) and, through get, no User-Agent unless given.
var bareClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	if c == nil {
		c = bareClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return response{resp.StatusCode, string(b), resp.Header}
}

func get(t *testing.T, url string, header map[string]string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "") // an empty User-Agent is not sent
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return do(t, nil, req)
}

// newH2CClient speaks cleartext HTTP/2 with prior knowledge, as the
// activator does.
func newH2CClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

// getAsync is get for other goroutines: it reports failures with Errorf.
func getAsync(t *testing.T, url string) response {
	resp, err := bareClient.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("GET %s: reading body: %v", url, err)
	}
	return response{resp.StatusCode, string(b), resp.Header}
}

// echoApp answers with the request's Host and selected headers, one per
// line, over HTTP/1.1 and, if h2c, also cleartext HTTP/2.
func echoApp(t *testing.T, h2cToo ...bool) *httptest.Server {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("proto=" + r.Proto + "\nhost=" + r.Host + "\n")
		for _, k := range []string{"Knative-Serving-Revision", "Knative-Serving-Namespace", "K-Original-Host", "Forwarded", "X-Forwarded-For", "User-Agent", "Accept-Encoding"} {
			if v, ok := r.Header[k]; ok {
				b.WriteString(k + "=" + strings.Join(v, ",") + "\n")
			}
		}
		io.WriteString(w, b.String())
	})
	if len(h2cToo) > 0 && h2cToo[0] {
		h = h2c.NewHandler(h, &http2.Server{})
	}
	app := httptest.NewServer(h)
	t.Cleanup(app.Close)
	return app
}

func TestRunProxiesAndAnswersProbes(t *testing.T) {
	q := startQP(t, echoApp(t), nil)

	// A proxied request, with every header rule of CONTRACT.md §10.4.
	r := get(t, q.url(serverMain, "/path?x=1"), map[string]string{
		"Host": "hello.default.example.com", "Knative-Serving-Revision": "r", "Knative-Serving-Namespace": "n",
		"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
	})
	if r.code != http.StatusOK {
		t.Fatalf("proxied request: %d %q", r.code, r.body)
	}
	for _, want := range []string{
		"proto=HTTP/1.1", "host=hello.default.example.com", "Forwarded=for=1.2.3.4;proto=https",
		"X-Forwarded-For=1.2.3.4, 127.0.0.1",
	} {
		if !strings.Contains(r.body, want+"\n") {
			t.Errorf("upstream saw %q; missing %q", r.body, want)
		}
	}
	// Go's client sends a User-Agent and Accept-Encoding; the user container
	// must see neither (no UA was given explicitly, compression is off).
	for _, gone := range []string{"Knative-Serving-Revision", "Knative-Serving-Namespace", "Accept-Encoding", "User-Agent"} {
		if strings.Contains(r.body, gone) {
			t.Errorf("upstream saw %s: %q", gone, r.body)
		}
	}

	// K-Original-Host becomes Host and disappears.
	r = get(t, q.url(serverMain, "/"), map[string]string{"K-Original-Host": "orig.example"})
	if !strings.Contains(r.body, "host=orig.example\n") || strings.Contains(r.body, "K-Original-Host") {
		t.Errorf("K-Original-Host rewrite: upstream saw %q", r.body)
	}

	probes := []struct {
		name     string
		header   map[string]string
		code     int
		body     string
		hashEcho string
	}{
		{"activator", map[string]string{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"}, 200, "queue", ""},
		{"kubelet", map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"}, 200, "queue", ""},
		{"autoscaler", map[string]string{"User-Agent": "Knative-Autoscaling-Probe", "K-Network-Probe": "queue"}, 200, "queue", ""},
		{"kubelet without header", map[string]string{"User-Agent": "kube-probe/1.31"}, 400, "unexpected probe header value: \n", ""},
		{"network probe", map[string]string{"K-Network-Probe": "probe", "K-Network-Hash": "abc"}, 200, "", "abc"},
		{"network probe without hash", map[string]string{"K-Network-Probe": "probe"}, 400, "a probe request must contain a non-empty \"K-Network-Hash\" header\n", ""},
	}
	for _, p := range probes {
		r := get(t, q.url(serverMain, "/healthz"), p.header)
		if r.code != p.code || r.body != p.body || r.header.Get("K-Network-Hash") != p.hashEcho {
			t.Errorf("%s probe: got %d %q hash %q, want %d %q hash %q", p.name, r.code, r.body, r.header.Get("K-Network-Hash"), p.code, p.body, p.hashEcho)
		}
	}
}

func TestRunServesH2C(t *testing.T) {
	q := startQP(t, echoApp(t, true), nil)
	_, port, _ := net.SplitHostPort(q.addrs[serverMain])

	// Prior knowledge, as the activator speaks it; the app then sees h2c too.
	h2cClient := newH2CClient()
	defer h2cClient.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, "/"), nil)
	if r := do(t, h2cClient, req); r.code != http.StatusOK || !strings.Contains(r.body, "proto=HTTP/2.0") {
		t.Errorf("h2c prior knowledge: %d %q", r.code, r.body)
	}

	// The HTTP/1.1 Upgrade handshake, as curl --http2 does it: 101.
	conn, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		t.Errorf("h2c upgrade: status line %q, %v; want 101", status, err)
	}
}

// TestRunH2ToHTTP1App: the upstream protocol follows the inbound one, so an
// HTTP/2 request to an HTTP/1-only app is a 502 with the transport's error
// (CONTRACT.md §3.12, last row).
func TestRunH2ToHTTP1App(t *testing.T) {
	q := startQP(t, echoApp(t), nil)
	h2cClient := newH2CClient()
	defer h2cClient.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, q.url(serverMain, "/"), nil)
	r := do(t, h2cClient, req)
	if r.code != http.StatusBadGateway || !strings.HasPrefix(r.body, "http2: ") || !strings.HasSuffix(r.body, "\n") {
		t.Errorf("h2 to an HTTP/1 app: %d %q, want 502 http2: …", r.code, r.body)
	}
}

func TestRunMetricsAndAdminPorts(t *testing.T) {
	q := startQP(t, echoApp(t), nil)

	r := get(t, q.url(serverMetrics, "/metrics"), map[string]string{"Accept": "text/plain"})
	if r.code != 200 || r.header.Get("Content-Type") != "application/protobuf" {
		t.Fatalf("metrics: %d %q", r.code, r.header.Get("Content-Type"))
	}
	num, typ, n := protowire.ConsumeTag([]byte(r.body))
	pod, m := protowire.ConsumeString([]byte(r.body)[n:])
	if num != 1 || typ != protowire.BytesType || pod != baseEnv()["SERVING_POD"] || n+m != len(r.body) {
		t.Errorf("first Stat = %x; want only pod_name %q", r.body, baseEnv()["SERVING_POD"])
	}
	if r := get(t, q.url(serverMetrics, "/other"), nil); r.code != http.StatusNotFound {
		t.Errorf("metrics /other: %d, want 404", r.code)
	}
	if r := get(t, q.url(serverAdmin, "/other"), nil); r.code != http.StatusNotFound {
		t.Errorf("admin /other: %d, want 404", r.code)
	}
}

// TestRunWaitForDrainWithoutSIGTERM: the preStop hook of a restarting user
// container drains for a second, then probes recover (CONTRACT.md §6.2).
func TestRunWaitForDrainWithoutSIGTERM(t *testing.T) {
	q := startQP(t, echoApp(t), nil)
	base := q.clock.Waiters()

	hook := make(chan response, 1)
	go func() { hook <- getAsync(t, q.url(serverAdmin, "/wait-for-drain")) }()
	q.waitForWaiters(base + 2) // the 1 s reset timer and the drain's quiet timer

	activator := map[string]string{"User-Agent": "Knative-Activator-Probe", "K-Network-Probe": "queue"}
	if r := get(t, q.url(serverMain, "/"), activator); r.code != 503 || r.body != "shutting down\n" {
		t.Errorf("probe while draining: %d %q, want 503 shutting down", r.code, r.body)
	}
	q.clock.Step(time.Second)
	if r := <-hook; r.code != 200 || r.body != "" {
		t.Errorf("/wait-for-drain: %d %q, want 200 and an empty body", r.code, r.body)
	}
	if r := get(t, q.url(serverMain, "/"), activator); r.code != 200 || r.body != "queue" {
		t.Errorf("probe after reset: %d %q, want 200 queue", r.code, r.body)
	}
}

// TestRunGracefulShutdown: SIGTERM drains (probes fail, traffic still
// served, quiet period restarted by traffic), then in-flight requests finish
// before run returns nil.
func TestRunGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	entered := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer app.Close()
	defer unblock() // runs first (defers are LIFO), so app.Close never waits on the held request
	q := startQP(t, app, map[string]string{"QP_DRAIN_QUIET_PERIOD": "30s"})
	base := q.clock.Waiters()

	slow := make(chan response, 1)
	go func() { slow <- getAsync(t, q.url(serverMain, "/slow")) }()
	<-entered

	q.cancel()                 // SIGTERM
	q.waitForWaiters(base + 1) // the drain's quiet timer

	if r := get(t, q.url(serverMain, "/"), map[string]string{"User-Agent": "kube-probe/1.31", "K-Network-Probe": "queue"}); r.code != 503 || r.body != "shutting down\n" {
		t.Errorf("probe while draining: %d %q", r.code, r.body)
	}
	q.clock.Step(20 * time.Second)
	if r := get(t, q.url(serverMain, "/"), nil); r.code != 200 || r.body != "done" {
		t.Errorf("request while draining: %d %q, want 200", r.code, r.body)
	}
	q.clock.Step(20 * time.Second) // 40 s after SIGTERM, but 20 s after the last request
	select {
	case err := <-q.done:
		t.Fatalf("run returned %v before the quiet period after the last request", err)
	case <-time.After(20 * time.Millisecond):
	}
	q.clock.Step(10 * time.Second)
	// Drain is over; the server shutdown waits for the in-flight request.
	select {
	case err := <-q.done:
		t.Fatalf("run returned %v with a request in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	unblock()
	if r := <-slow; r.code != 200 || r.body != "done" {
		t.Errorf("in-flight request: %d %q, want 200 done", r.code, r.body)
	}
	if err := q.stepUntilDone(t); err != nil {
		t.Errorf("run = %v, want nil", err)
	}
}

func TestRunBadEnvironment(t *testing.T) {
	for name, change := range map[string]map[string]string{
		"bad int":                  {"CONTAINER_CONCURRENCY": "many"},
		"bad observability config": {"OBSERVABILITY_CONFIG": "{"},
	} {
		t.Run(name, func(t *testing.T) {
			env := baseEnv()
			for k, v := range change {
				env[k] = v
			}
			setEnv(t, env)
			if err := run(context.Background(), runtimeDeps{clock: clocktest.NewFakeClock(time.Now())}); err == nil {
				t.Fatal("run succeeded with a bad environment")
			}
		})
	}
}

func TestRunPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	env := baseEnv()
	env["QUEUE_SERVING_PORT"], env["QP_ADMIN_PORT"], env["QP_METRICS_PORT"] = "0", port, "0"
	setEnv(t, env)
	err = run(context.Background(), runtimeDeps{clock: clocktest.NewFakeClock(time.Now())})
	if err == nil || !strings.Contains(err.Error(), "server admin") {
		t.Fatalf("run = %v, want an error naming the admin server", err)
	}
}
