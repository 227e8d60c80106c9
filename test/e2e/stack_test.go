package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// startupTimeout bounds how long a process may take to start listening; the
// suite runs beside other builds and -race tests, so it is generous.
const startupTimeout = 30 * time.Second

// ports are the ports of one pod: the user container's and queue-proxy's.
type ports struct {
	user       int
	main       int // QUEUE_SERVING_PORT
	tls        int // QUEUE_SERVING_TLS_PORT (listens only with certificates)
	admin      int // QP_ADMIN_PORT (Knative: 8022)
	metrics    int // QP_METRICS_PORT (Knative: 9090)
	prometheus int // METRICS_PROMETHEUS_PORT (Knative: 9091)
	profiling  int // PROFILING_PORT (Knative: 8008)
}

// pickQPPorts chooses fresh ports for every queue-proxy listener.
func (p *ports) pickQPPorts(t *testing.T) {
	p.main, p.tls, p.admin = freePort(t), freePort(t), freePort(t)
	p.metrics, p.prometheus, p.profiling = freePort(t), freePort(t), freePort(t)
}

// knativeEnv is the environment Knative's reconciler gives queue-proxy
// (CONTRACT.md §1c, including the variables queue-proxy ignores), on the
// given ports, with a 1 s drain quiet period and a 5 s hijack drain so that
// shutdowns are quick.
func knativeEnv(p ports) map[string]string {
	env := baseProcessEnv()
	for k, v := range map[string]string{
		"SERVING_NAMESPACE":                       "default",
		"SERVING_SERVICE":                         "hello",
		"SERVING_CONFIGURATION":                   "hello",
		"SERVING_REVISION":                        "hello-00001",
		"QUEUE_SERVING_PORT":                      strconv.Itoa(p.main),
		"QUEUE_SERVING_TLS_PORT":                  strconv.Itoa(p.tls),
		"CONTAINER_CONCURRENCY":                   "0",
		"REVISION_TIMEOUT_SECONDS":                "300",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS": "0",
		"REVISION_IDLE_TIMEOUT_SECONDS":           "0",
		"SERVING_POD":                             podName,
		"SERVING_POD_IP":                          "127.0.0.1",
		"SERVING_LOGGING_CONFIG":                  "",
		"SERVING_LOGGING_LEVEL":                   "info",
		"USER_PORT":                               strconv.Itoa(p.user),
		"SYSTEM_NAMESPACE":                        "knative-serving",
		"SERVING_READINESS_PROBE":                 fmt.Sprintf(`{"tcpSocket":{"port":%d,"host":"127.0.0.1"},"successThreshold":1}`, p.user),
		"HOST_IP":                                 "127.0.0.1",
		"ENABLE_HTTP2_AUTO_DETECTION":             "false",
		"ENABLE_HTTP_FULL_DUPLEX":                 "false",
		"ROOT_CA":                                 "",
		"QUEUE_PROXY_TLS_MIN_VERSION":             "",
		"QUEUE_PROXY_TLS_MAX_VERSION":             "",
		"QUEUE_PROXY_TLS_CIPHER_SUITES":           "",
		"QUEUE_PROXY_TLS_CURVE_PREFERENCES":       "",
		"ENABLE_MULTI_CONTAINER_PROBES":           "false",
		"OBSERVABILITY_CONFIG":                    `{"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled","exportInterval":15000000000},"requestMetrics":{"protocol":"none"}}`,
		// Our overrides of Knative's fixed values.
		"QP_ADMIN_PORT":           strconv.Itoa(p.admin),
		"QP_METRICS_PORT":         strconv.Itoa(p.metrics),
		"METRICS_PROMETHEUS_PORT": strconv.Itoa(p.prometheus),
		"PROFILING_PORT":          strconv.Itoa(p.profiling),
		"QP_DRAIN_QUIET_PERIOD":   "1s",
		"QP_HIJACK_DRAIN_TIMEOUT": "5s",
	} {
		env[k] = v
	}
	return env
}

// podName is SERVING_POD, which the autoscaler Stat carries.
const podName = "hello-00001-deployment-e2e"

// stackConfig customises a pod.
type stackConfig struct {
	qpEnv  map[string]string // added to (or replacing) knativeEnv
	appEnv map[string]string // the user container's environment
}

// stack is one pod: the user container and queue-proxy in front of it.
type stack struct {
	t     *testing.T
	cfg   stackConfig
	ports ports
	app   *process
	qp    *process
	c     *http.Client // HTTP/1.1 client for the main port
}

// startStack starts the user container, then queue-proxy, and returns once
// queue-proxy answers the activator probe with 200.
func startStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	s := &stack{t: t, cfg: cfg, c: newH1Client(t)}
	s.app = startApp(t, &s.ports.user, cfg.appEnv)
	for attempt := 1; ; attempt++ {
		s.ports.pickQPPorts(t)
		env := knativeEnv(s.ports)
		for k, v := range cfg.qpEnv {
			env[k] = v
		}
		s.qp = startProcess(t, "queue-proxy", qpBin, nil, envList(env))
		err := s.waitReady()
		if err == nil {
			return s
		}
		if s.qp.exited() && addrInUse(s.qp) && attempt < 3 {
			t.Logf("queue-proxy lost a port race, retrying: %v", err)
			continue
		}
		t.Fatalf("queue-proxy did not become ready: %v", err)
	}
}

// waitReady polls the activator probe until it answers 200 "queue".
func (s *stack) waitReady() error {
	deadline := time.Now().Add(startupTimeout)
	var last string
	for time.Now().Before(deadline) {
		if s.qp.exited() {
			return fmt.Errorf("queue-proxy exited with status %d", s.qp.code)
		}
		r, err := fetch(s.c, probeRequest(s.url("/"), activatorUA, "queue"))
		if err == nil && r.code == http.StatusOK && r.body == "queue" {
			return nil
		}
		last = fmt.Sprint(r.code, " ", r.body, " ", err)
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("no 200 \"queue\" from the activator probe within %v (last: %s)", startupTimeout, last)
}

// startApp starts the user container on *port, choosing a free one if it is
// 0, and waits until it serves.
func startApp(t *testing.T, port *int, env map[string]string) *process {
	t.Helper()
	fresh := *port == 0
	for attempt := 1; ; attempt++ {
		if fresh {
			*port = freePort(t)
		}
		e := baseProcessEnv()
		for k, v := range env {
			e[k] = v
		}
		p := startProcess(t, "app", appBin, []string{"-port", strconv.Itoa(*port)}, envList(e))
		err := waitServing(p, "http://127.0.0.1:"+strconv.Itoa(*port)+"/healthz")
		if err == nil {
			return p
		}
		if fresh && p.exited() && addrInUse(p) && attempt < 3 {
			continue
		}
		t.Fatalf("user container did not start: %v", err)
	}
}

// waitServing polls url until it answers at all.
func waitServing(p *process, url string) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(startupTimeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited with status %d", p.name, p.code)
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing answered %s within %v", p.name, url, startupTimeout)
}

// restartApp starts the user container again on the same port, as kubelet
// restarts a crashed container.
func (s *stack) restartApp() {
	s.t.Helper()
	s.app = startApp(s.t, &s.ports.user, s.cfg.appEnv)
}

func (s *stack) url(path string) string        { return hostURL(s.ports.main, path) }
func (s *stack) adminURL(path string) string   { return hostURL(s.ports.admin, path) }
func (s *stack) metricsURL(path string) string { return hostURL(s.ports.metrics, path) }
func (s *stack) pprofURL(path string) string   { return hostURL(s.ports.profiling, path) }

func hostURL(port int, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// probe sends a health probe with the given User-Agent and K-Network-Probe
// value ("" for none) to the main port.
func (s *stack) probe(ua, kNetworkProbe string) response {
	s.t.Helper()
	return mustFetch(s.t, s.c, probeRequest(s.url("/"), ua, kNetworkProbe))
}
