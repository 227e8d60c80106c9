package otel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSpanExportQueueFull: with an OTLP/HTTP collector that accepts
// connections and never answers, and a tiny batch span processor queue
// (OTEL_BSP_MAX_QUEUE_SIZE 8, batches of 4 every 50 ms), a flood of traced
// requests is served as quickly as with tracing off: spans that do not fit
// are dropped, not waited for. queue-proxy logs a warning that spans were
// dropped, with the count, and SIGTERM still ends it within the drain
// quiet period plus the 10 s flush timeout (CONTRACT.md §5.6).
func TestSpanExportQueueFull(t *testing.T) {
	t.Parallel()
	const (
		requests = 300
		workers  = 8
		// A request that waited for the stuck export would wait for its
		// timeout (30 s); the bounds only need to tell that apart from a
		// loaded 2-core machine's noise.
		maxP99 = 200 * time.Millisecond // or 5× tracing off's p99, if larger
		maxAny = 5 * time.Second
		// Drain quiet period (1 s, harness.KnativeEnv) + flush timeout
		// (10 s) + slack.
		exitBound = 15 * time.Second
	)
	hang := startHangingListener(t)
	traced := startStack(t, tracingConfig(protoHTTP, "http://"+hang.ln.Addr().String()+"/v1/traces", ""), map[string]string{
		"OTEL_BSP_MAX_QUEUE_SIZE":        "8",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
		"OTEL_BSP_SCHEDULE_DELAY":        "50",
	})
	off := startStack(t, observabilityConfig("none", "", time.Second), nil)

	baseline := flood(t, off, requests, workers)
	lat := flood(t, traced, requests, workers)
	t.Logf("tracing off: p50 %v p99 %v max %v; spans to a stuck collector: p50 %v p99 %v max %v",
		pct(baseline, 50), pct(baseline, 99), pct(baseline, 100), pct(lat, 50), pct(lat, 99), pct(lat, 100))
	if p, bound := pct(lat, 99), max(maxP99, 5*pct(baseline, 99)); p >= bound {
		t.Errorf("p99 latency %v with a stuck collector, want < %v (tracing off: %v)", p, bound, pct(baseline, 99))
	}
	if m := pct(lat, 100); m >= maxAny {
		t.Errorf("slowest request took %v with a stuck collector, want < %v", m, maxAny)
	}
	if hang.accepted.Load() == 0 {
		t.Error("queue-proxy never connected to the collector: the test did not test a stuck export")
	}

	var warning string
	err := traced.qp.Await(10*time.Second, 20*time.Millisecond, func() (bool, string) {
		warning = droppedWarning(traced.qp.Stderr() + "\n" + traced.qp.Stdout())
		return warning != "", "no warning about dropped spans in the log yet"
	})
	if err != nil {
		t.Errorf("the log: %v", err)
	} else {
		t.Logf("warning: %s", warning)
	}

	// The client may hold a connection it dialled but never sent a request
	// on; net/http's Shutdown waits up to 5 s for such a connection, which
	// the bound does not allow for (a drain-timing question, not the
	// flush's). Closing the idle ones leaves only the flush to wait for.
	traced.c.CloseIdleConnections()
	t0 := time.Now()
	traced.qp.Signal(t, syscall.SIGTERM)
	if code := traced.qp.WaitExit(t, exitBound); code != 0 {
		t.Errorf("queue-proxy exited with status %d after SIGTERM, want 0", code)
	}
	t.Logf("exited %v after SIGTERM, %d export connections left hanging", time.Since(t0).Round(time.Millisecond), hang.accepted.Load())
}

// flood sends n traced GETs through s from workers goroutines and returns
// their latencies, sorted; every request must succeed.
func flood(t *testing.T, s *stack, n, workers int) []time.Duration {
	t.Helper()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []string
		wg   sync.WaitGroup
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				c := s.prepare(spanCall{name: fmt.Sprint("request ", i), method: http.MethodGet, path: "/status?code=200",
					propagation: propW3C, want: 200})
				t0 := time.Now()
				c = s.exchange(c)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if c.err != nil || c.status != 200 {
					errs = append(errs, fmt.Sprintf("%s: %d %q %v", c.name, c.status, c.respBody, c.err))
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %s", len(errs), n, errs[0])
	}
	slices.Sort(lat)
	return lat
}

// pct is the p-th percentile of sorted latencies (100: the slowest).
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

// droppedWarning finds a warning log line (zap JSON) whose message says
// "spans dropped" and that carries a positive numeric dropped count (a
// field whose name contains "dropped"); it returns the line, or "".
func droppedWarning(log string) string {
	for line := range strings.Lines(log) {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		msg, _ := entry["message"].(string)
		sev, _ := entry["severity"].(string)
		if !strings.Contains(msg, "spans dropped") || !strings.HasPrefix(strings.ToUpper(sev), "WARN") {
			continue
		}
		for k, v := range entry {
			if n, ok := v.(float64); ok && strings.Contains(strings.ToLower(k), "dropped") && n > 0 {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}
