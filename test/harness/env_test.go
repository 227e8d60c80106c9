package harness

import (
	"slices"
	"testing"

	"github.com/queue-proxy/queue-proxy/pkg/queue/sharedmain"
)

// TestKnativeEnvHasTheReconcilers: the environment the suites give
// queue-proxy sets every variable Knative's reconciler sets, so that it
// drifts with neither.
func TestKnativeEnvHasTheReconcilers(t *testing.T) {
	env := KnativeEnv(Pod{})
	for _, name := range sharedmain.ReconcilerEnv() {
		if _, ok := env[name]; !ok {
			t.Errorf("KnativeEnv lacks %s, which the reconciler sets", name)
		}
	}
}

func TestKnativeEnvPortsAndPod(t *testing.T) {
	pod := Pod{Namespace: "ns", Service: "svc", Configuration: "cfg", Revision: "rev", Name: "pod", ContainerConcurrency: 7,
		ObservabilityConfig: "{}", Ports: Ports{User: 1, Main: 2, TLS: 3, Admin: 4, Metrics: 5, Prometheus: 6, Profiling: 7}}
	env := KnativeEnv(pod)
	want := map[string]string{
		"SERVING_NAMESPACE": "ns", "SERVING_SERVICE": "svc", "SERVING_CONFIGURATION": "cfg", "SERVING_REVISION": "rev",
		"SERVING_POD": "pod", "CONTAINER_CONCURRENCY": "7", "OBSERVABILITY_CONFIG": "{}",
		"USER_PORT": "1", "QUEUE_SERVING_PORT": "2", "QUEUE_SERVING_TLS_PORT": "3", "QP_ADMIN_PORT": "4",
		"QP_METRICS_PORT": "5", "METRICS_PROMETHEUS_PORT": "6", "PROFILING_PORT": "7",
		"SERVING_READINESS_PROBE": `{"tcpSocket":{"port":1,"host":"127.0.0.1"},"successThreshold":1}`,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin")
	t.Setenv("TMPDIR", "/tmp/x")
	t.Setenv("OTEL_SERVICE_NAME", "from-the-developer")
	got := ChildEnv(map[string]string{"TMPDIR": "/tmp/y", "B": "2", "A": "1"})
	want := []string{"A=1", "B=2", "PATH=/usr/bin", "TMPDIR=/tmp/y"}
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if seen[p] || p <= 0 {
			t.Fatalf("FreePort returned %d twice or invalid", p)
		}
		seen[p] = true
	}
	var p Ports
	p.User = 42
	p.PickQueueProxy(t)
	all := []int{p.Main, p.TLS, p.Admin, p.Metrics, p.Prometheus, p.Profiling}
	for _, port := range all {
		if seen[port] {
			t.Errorf("PickQueueProxy reused port %d", port)
		}
		seen[port] = true
	}
	if p.User != 42 {
		t.Errorf("PickQueueProxy changed User to %d", p.User)
	}
}
