package otel

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/test/harness"
)

// The pod the tests pretend to be.
const (
	namespace     = "otel-ns"
	service       = "hello"
	configuration = "hello-config"
	revision      = "hello-00001"
	servingPod    = "hello-00001-deployment-abc12" // SERVING_POD (autoscaler Stat)
	podName       = "hello-00001-deployment-xyz89" // POD_NAME (OTel resource)
	containerConc = 2
)

// Protocols of OBSERVABILITY_CONFIG requestMetrics.
const (
	protoGRPC = "grpc"
	protoHTTP = "http/protobuf"
)

// observabilityConfig is OBSERVABILITY_CONFIG as the v0.51.0 reconciler
// writes it, with request metrics pushed over OTLP.
func observabilityConfig(protocol, endpoint string, interval time.Duration) string {
	return observabilityConfigRuntime(protocol, endpoint, interval, 15*time.Second)
}

// observabilityConfigRuntime is observabilityConfig with the runtime
// metrics' exportInterval (the reconciler's default is 15 s).
func observabilityConfigRuntime(protocol, endpoint string, interval, runtimeInterval time.Duration) string {
	type rm struct {
		Protocol       string `json:"protocol"`
		Endpoint       string `json:"endpoint,omitempty"`
		ExportInterval int64  `json:"exportInterval,omitempty"`
	}
	b, err := json.Marshal(map[string]any{
		"tracing":        map[string]any{"protocol": "none"},
		"metrics":        map[string]any{"protocol": "none"},
		"runtime":        map[string]any{"profiling": "disabled", "exportInterval": int64(runtimeInterval)},
		"requestMetrics": rm{Protocol: protocol, Endpoint: endpoint, ExportInterval: int64(interval)},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// qpEnv is the environment Knative's v0.51.0 reconciler gives queue-proxy
// for the tests' pod (harness.KnativeEnv), plus POD_NAME and
// OTEL_RESOURCE_ATTRIBUTES as a pod spec might carry them.
func qpEnv(p harness.Ports, obsConfig string) map[string]string {
	env := harness.KnativeEnv(harness.Pod{
		Namespace:            namespace,
		Service:              service,
		Configuration:        configuration,
		Revision:             revision,
		Name:                 servingPod,
		ContainerConcurrency: containerConc,
		ObservabilityConfig:  obsConfig,
		Ports:                p,
	})
	// From the pod spec (downward API) and the operator.
	env["POD_NAME"] = podName
	env["OTEL_RESOURCE_ATTRIBUTES"] = "deployment.environment=test,k8s.namespace.name=wrong"
	return env
}

// stack is one pod: the demo user container and queue-proxy in front of it.
type stack struct {
	t     *testing.T
	ports harness.Ports
	app   *harness.Process
	qp    *harness.Process
	c     *http.Client
}

// startStack starts the user container, then queue-proxy with qpEnv, the
// OBSERVABILITY_CONFIG given and extra on top, and returns once queue-proxy
// answers the activator probe with 200 "queue".
func startStack(t *testing.T, obsConfig string, extra map[string]string) *stack {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	s := &stack{t: t, c: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	s.app = harness.StartApp(t, bins.App, &s.ports.User, nil)
	s.qp = harness.StartQueueProxy(t, bins.QueueProxy, &s.ports, func(p harness.Ports) map[string]string {
		env := qpEnv(p, obsConfig)
		maps.Copy(env, extra)
		return env
	})
	return s
}

// poll is harness.Poll every 20 ms.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	return harness.Poll(timeout, 20*time.Millisecond, cond)
}

// request builds a request to queue-proxy's main port, with no User-Agent
// unless the caller sets one.
func (s *stack) request(method, path string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(s.ports.Main)+path, body)
	if err != nil {
		panic(err)
	}
	req.Header.Set("User-Agent", "")
	return req
}

// do sends req and reads the whole response.
func (s *stack) do(req *http.Request) (int, string, error) {
	resp, err := s.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustDo is do that fails the test on a transport error; only for the
// test's goroutine.
func (s *stack) mustDo(req *http.Request) (int, string) {
	s.t.Helper()
	code, body, err := s.do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return code, body
}

// hostPort is "127.0.0.1:<main port>", the Host of requests that do not set
// another.
func (s *stack) hostPort() string { return "127.0.0.1:" + strconv.Itoa(s.ports.Main) }
