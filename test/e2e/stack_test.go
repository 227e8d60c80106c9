package e2e

import (
	"maps"
	"net/http"
	"strconv"
	"testing"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// knativeEnv is the environment Knative's reconciler gives queue-proxy
// (harness.KnativeEnv) for the suite's pod on the given ports, with request
// metrics, tracing and profiling off.
func knativeEnv(p harness.Ports) map[string]string {
	return harness.KnativeEnv(harness.Pod{
		Namespace:           "default",
		Service:             "hello",
		Configuration:       "hello",
		Revision:            "hello-00001",
		Name:                podName,
		ObservabilityConfig: `{"tracing":{"protocol":"none"},"metrics":{"protocol":"none"},"runtime":{"profiling":"disabled","exportInterval":15000000000},"requestMetrics":{"protocol":"none"}}`,
		Ports:               p,
	})
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
	ports harness.Ports
	app   *harness.Process
	qp    *harness.Process
	c     *http.Client // HTTP/1.1 client for the main port
}

// startStack starts the user container, then queue-proxy, and returns once
// queue-proxy answers the activator probe with 200.
func startStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	var userPort int
	app := harness.StartApp(t, bins.App, &userPort, cfg.appEnv)
	s := startQPWith(t, userPort, func(env map[string]string) { maps.Copy(env, cfg.qpEnv) })
	s.cfg, s.app = cfg, app
	return s
}

// startQPWith starts a queue-proxy in front of the user container on
// userPort, with knativeEnv changed by edit (which may delete variables,
// which stackConfig cannot), and waits until it is ready.
func startQPWith(t *testing.T, userPort int, edit func(map[string]string)) *stack {
	t.Helper()
	s := &stack{t: t, c: newH1Client(t)}
	s.ports.User = userPort
	s.qp = harness.StartQueueProxy(t, bins.QueueProxy, &s.ports, func(p harness.Ports) map[string]string {
		env := knativeEnv(p)
		edit(env)
		return env
	})
	return s
}

// restartApp starts the user container again on the same port, as kubelet
// restarts a crashed container.
func (s *stack) restartApp() {
	s.t.Helper()
	s.app = harness.StartApp(s.t, bins.App, &s.ports.User, s.cfg.appEnv)
}

func (s *stack) url(path string) string        { return hostURL(s.ports.Main, path) }
func (s *stack) adminURL(path string) string   { return hostURL(s.ports.Admin, path) }
func (s *stack) metricsURL(path string) string { return hostURL(s.ports.Metrics, path) }
func (s *stack) pprofURL(path string) string   { return hostURL(s.ports.Profiling, path) }

func hostURL(port int, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// probe sends a health probe with the given User-Agent and K-Network-Probe
// value ("" for none) to the main port.
func (s *stack) probe(ua, kNetworkProbe string) response {
	s.t.Helper()
	return mustFetch(s.t, s.c, probeRequest(s.url("/"), ua, kNetworkProbe))
}
