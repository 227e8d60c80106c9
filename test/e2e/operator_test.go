package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOperatorWindow checks the operator's view of a running pod after real
// traffic: the "ready" log line with the cold-start timeline, /debug/stats
// on the debug listener (JSON and text) and /healthz on the admin port.
func TestOperatorWindow(t *testing.T) {
	s := startStack(t, stackConfig{qpEnv: map[string]string{"CONTAINER_CONCURRENCY": "2"}})
	const requests = 20
	for i := range requests {
		if r := mustFetch(t, s.c, get(s.url("/status?code="+map[bool]string{true: "500", false: "200"}[i%10 == 0]))); r.code != 200 && r.code != 500 {
			t.Fatalf("request %d: %d %q", i, r.code, r.body)
		}
	}
	debugURL := hostURL(s.ports.Debug, "/debug/stats")

	t.Run("ready log line", func(t *testing.T) {
		var line map[string]any
		for l := range strings.SplitSeq(s.qp.Stderr(), "\n") {
			if strings.Contains(l, "queue-proxy ready") {
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
				break
			}
		}
		if line == nil {
			t.Fatalf("no ready line in the log:\n%s", s.qp.Stderr())
		}
		prev := 0.0
		for _, k := range []string{"envParsedMs", "listeningMs", "firstReadinessCheckMs", "userContainerReadyMs", "firstProbe200Ms"} {
			v, ok := line[k].(float64)
			if !ok || v < prev {
				t.Errorf("%s = %v, want a number ≥ the phase before (%v): %v", k, line[k], prev, line)
			}
			prev = v
		}
		if n, _ := line["readinessChecks"].(float64); n < 1 {
			t.Errorf("readinessChecks %v, want ≥ 1", line["readinessChecks"])
		}
	})

	t.Run("stats JSON", func(t *testing.T) {
		r := mustFetch(t, s.c, get(debugURL))
		var doc struct {
			InFlight, Queued int64
			Windows          []struct {
				Name                  string
				Requests, OtherErrors uint64
				Admitted              uint64
				Total                 struct {
					Count uint64
					P50Ms float64 `json:"p50Ms"`
				}
			}
			Startup struct {
				Phases []struct{ Phase string }
			}
		}
		if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s: %s", r.code, r.header.Get("Content-Type"), r.body)
		}
		if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		if len(doc.Windows) != 3 {
			t.Fatalf("%d windows, want 3: %s", len(doc.Windows), r.body)
		}
		for _, w := range doc.Windows {
			if w.Requests != requests || w.Admitted != requests || w.OtherErrors != 2 || w.Total.Count != requests || w.Total.P50Ms <= 0 {
				t.Errorf("window %s: %+v; want %d requests, all admitted, 2 errors (the 500s), a median", w.Name, w, requests)
			}
		}
		var phases []string
		for _, p := range doc.Startup.Phases {
			phases = append(phases, p.Phase)
		}
		if len(phases) != 6 || phases[len(phases)-1] != "firstRequest" {
			t.Errorf("startup phases %v, want all six, the first request last", phases)
		}
	})

	t.Run("stats text", func(t *testing.T) {
		req := get(debugURL)
		req.Header.Set("Accept", "text/plain")
		r := mustFetch(t, s.c, req)
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
			!strings.Contains(r.body, "p99") || !strings.Contains(r.body, "firstProbe200") {
			t.Errorf("%d %s:\n%s", r.code, r.header.Get("Content-Type"), r.body)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		r := mustFetch(t, s.c, get(s.adminURL("/healthz")))
		var body struct {
			Status      string
			LastUpdated time.Time
			CurrentTime time.Time
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("%d: %v: %s", r.code, err, r.body)
		}
		if r.code != http.StatusOK || body.Status != "ok" || body.CurrentTime.Before(body.LastUpdated) {
			t.Errorf("%d %+v, want 200 ok", r.code, body)
		}
	})

	t.Run("debug listener on loopback only", func(t *testing.T) {
		if !strings.Contains(s.qp.Stderr(), "Starting http server debug 127.0.0.1:"+strconv.Itoa(s.ports.Debug)) {
			t.Errorf("the debug listener did not start on 127.0.0.1:%d:\n%s", s.ports.Debug, s.qp.Stderr())
		}
	})
}
