package harness

import (
	"fmt"
	"os"
	"sort"
	"strconv"
)

// ChildEnv is the environment of a child: vars on top of what it inherits
// from the test's environment, which is only what a Go program may want
// (PATH, TMPDIR), not whatever OTEL_* or QP_* the developer has set. It is a
// sorted KEY=value list.
func ChildEnv(vars map[string]string) []string {
	m := map[string]string{}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	for k, v := range vars {
		m[k] = v
	}
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// Pod is what Knative's reconciler tells queue-proxy about its pod.
type Pod struct {
	Namespace, Service, Configuration, Revision string

	Name                 string // SERVING_POD, which the autoscaler Stat carries
	ContainerConcurrency int
	ObservabilityConfig  string // OBSERVABILITY_CONFIG
	Ports                Ports
}

// KnativeEnv is the environment Knative's reconciler gives queue-proxy
// (CONTRACT.md §1c, including the variables queue-proxy ignores) for pod,
// plus our overrides of Knative's fixed ports, so that tests run in
// parallel, and a 1 s drain quiet period and a 5 s hijack drain, so that
// shutdowns are quick.
func KnativeEnv(pod Pod) map[string]string {
	p := pod.Ports
	return map[string]string{
		"SERVING_NAMESPACE":                       pod.Namespace,
		"SERVING_SERVICE":                         pod.Service,
		"SERVING_CONFIGURATION":                   pod.Configuration,
		"SERVING_REVISION":                        pod.Revision,
		"QUEUE_SERVING_PORT":                      strconv.Itoa(p.Main),
		"QUEUE_SERVING_TLS_PORT":                  strconv.Itoa(p.TLS),
		"CONTAINER_CONCURRENCY":                   strconv.Itoa(pod.ContainerConcurrency),
		"REVISION_TIMEOUT_SECONDS":                "300",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS": "0",
		"REVISION_IDLE_TIMEOUT_SECONDS":           "0",
		"SERVING_POD":                             pod.Name,
		"SERVING_POD_IP":                          "127.0.0.1",
		"SERVING_LOGGING_CONFIG":                  "",
		"SERVING_LOGGING_LEVEL":                   "info",
		"USER_PORT":                               strconv.Itoa(p.User),
		"SYSTEM_NAMESPACE":                        "knative-serving",
		"SERVING_READINESS_PROBE":                 fmt.Sprintf(`{"tcpSocket":{"port":%d,"host":"127.0.0.1"},"successThreshold":1}`, p.User),
		"HOST_IP":                                 "127.0.0.1",
		"ENABLE_HTTP2_AUTO_DETECTION":             "false",
		"ENABLE_HTTP_FULL_DUPLEX":                 "false",
		"ROOT_CA":                                 "",
		"QUEUE_PROXY_TLS_MIN_VERSION":             "",
		"QUEUE_PROXY_TLS_MAX_VERSION":             "",
		"QUEUE_PROXY_TLS_CIPHER_SUITES":           "",
		"QUEUE_PROXY_TLS_CURVE_PREFERENCES":       "",
		"ENABLE_MULTI_CONTAINER_PROBES":           "false",
		"OBSERVABILITY_CONFIG":                    pod.ObservabilityConfig,

		// Our overrides of Knative's fixed ports and drain times.
		"QP_ADMIN_PORT":           strconv.Itoa(p.Admin),
		"QP_METRICS_PORT":         strconv.Itoa(p.Metrics),
		"METRICS_PROMETHEUS_PORT": strconv.Itoa(p.Prometheus),
		"PROFILING_PORT":          strconv.Itoa(p.Profiling),
		"QP_DEBUG_ADDRESS":        "127.0.0.1:" + strconv.Itoa(p.Debug),
		"QP_DRAIN_QUIET_PERIOD":   "1s",
		"QP_HIJACK_DRAIN_TIMEOUT": "5s",
	}
}
