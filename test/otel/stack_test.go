package otel

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
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

// ports of one pod: the user container's and queue-proxy's listeners.
type ports struct {
	user, main, tls, admin, metrics, prometheus, profiling int
}

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
// (CONTRACT.md §1c, including the variables it ignores), plus POD_NAME and
// OTEL_RESOURCE_ATTRIBUTES as a pod spec might carry them, and our port and
// drain overrides so that tests run in parallel and shut down quickly.
func qpEnv(p ports, obsConfig string) map[string]string {
	return map[string]string{
		"SERVING_NAMESPACE":                       namespace,
		"SERVING_SERVICE":                         service,
		"SERVING_CONFIGURATION":                   configuration,
		"SERVING_REVISION":                        revision,
		"QUEUE_SERVING_PORT":                      strconv.Itoa(p.main),
		"QUEUE_SERVING_TLS_PORT":                  strconv.Itoa(p.tls),
		"CONTAINER_CONCURRENCY":                   strconv.Itoa(containerConc),
		"REVISION_TIMEOUT_SECONDS":                "300",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS": "0",
		"REVISION_IDLE_TIMEOUT_SECONDS":           "0",
		"SERVING_POD":                             servingPod,
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
		"OBSERVABILITY_CONFIG":                    obsConfig,

		// From the pod spec (downward API) and the operator.
		"POD_NAME":                 podName,
		"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,k8s.namespace.name=wrong",

		// Our overrides of Knative's fixed ports and drain times.
		"QP_ADMIN_PORT":           strconv.Itoa(p.admin),
		"QP_METRICS_PORT":         strconv.Itoa(p.metrics),
		"METRICS_PROMETHEUS_PORT": strconv.Itoa(p.prometheus),
		"PROFILING_PORT":          strconv.Itoa(p.profiling),
		"QP_DRAIN_QUIET_PERIOD":   "1s",
		"QP_HIJACK_DRAIN_TIMEOUT": "5s",
	}
}

// TestEnvHasTheReconcilers: the environment these tests give queue-proxy
// carries every variable Knative's reconciler sets.
func TestEnvHasTheReconcilers(t *testing.T) {
	env := qpEnv(ports{}, "")
	for _, name := range sharedmain.ReconcilerEnv() {
		if _, ok := env[name]; !ok {
			t.Errorf("qpEnv lacks %s, which the reconciler sets", name)
		}
	}
}

// stack is one pod: the demo user container and queue-proxy in front of it.
type stack struct {
	t     *testing.T
	ports ports
	app   *proc
	qp    *proc
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
	s.app, s.ports.user = startApp(t)
	for attempt := 1; ; attempt++ {
		p := &s.ports
		p.main, p.tls, p.admin = freePort(t), freePort(t), freePort(t)
		p.metrics, p.prometheus, p.profiling = freePort(t), freePort(t), freePort(t)
		env := qpEnv(s.ports, obsConfig)
		for k, v := range extra {
			env[k] = v
		}
		s.qp = startProc(t, "queue-proxy", qpBin, nil, childEnv(env))
		err := poll(startupTimeout, func() (bool, string) {
			if s.qp.exited() {
				return true, ""
			}
			req := s.request(http.MethodGet, "/", nil)
			req.Header.Set("User-Agent", "Knative-Activator-Probe")
			req.Header.Set("K-Network-Probe", "queue")
			code, body, err := s.do(req)
			if err == nil && code == http.StatusOK && body == "queue" {
				return true, ""
			}
			return false, fmt.Sprint(code, " ", body, " ", err)
		})
		if err == nil && !s.qp.exited() {
			return s
		}
		if lostPortRace(s.qp) && attempt < 3 {
			t.Logf("queue-proxy lost a port race, retrying")
			continue
		}
		t.Fatalf("queue-proxy did not become ready: %v (exited: %v, status %d)", err, s.qp.exited(), s.qp.code)
	}
}

// request builds a request to queue-proxy's main port, with no User-Agent
// unless the caller sets one.
func (s *stack) request(method, path string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(s.ports.main)+path, body)
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
func (s *stack) hostPort() string { return "127.0.0.1:" + strconv.Itoa(s.ports.main) }
