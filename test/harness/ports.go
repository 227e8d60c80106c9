package harness

import (
	"net"
	"sync"
	"testing"
)

// Ports are the ports of one pod: the user container's and queue-proxy's.
type Ports struct {
	User       int // USER_PORT
	Main       int // QUEUE_SERVING_PORT
	TLS        int // QUEUE_SERVING_TLS_PORT (listens only with certificates)
	Admin      int // QP_ADMIN_PORT (Knative: 8022)
	Metrics    int // QP_METRICS_PORT (Knative: 9090)
	Prometheus int // METRICS_PROMETHEUS_PORT (Knative: 9091)
	Profiling  int // PROFILING_PORT (Knative: 8008)
	Debug      int // QP_DEBUG_ADDRESS's port, on 127.0.0.1 (default 8023)
}

// PickQueueProxy chooses fresh ports for every queue-proxy listener,
// leaving User as it is.
func (p *Ports) PickQueueProxy(t testing.TB) {
	p.Main, p.TLS, p.Admin = FreePort(t), FreePort(t), FreePort(t)
	p.Metrics, p.Prometheus, p.Profiling = FreePort(t), FreePort(t), FreePort(t)
	p.Debug = FreePort(t)
}

// Ports handed out in this test process, so that parallel tests never get
// the same one.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// FreePort returns a TCP port that is free on every interface right now
// (queue-proxy listens on ":port") and that it has not returned before.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsUsed[port] {
			portsUsed[port] = true
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}
