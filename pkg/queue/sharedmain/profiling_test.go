package sharedmain

import (
	"net/http"
	"strings"
	"testing"
)

// TestRunProfiling: the pprof server on PROFILING_PORT starts only when
// either generation enables it (ENABLE_PROFILING=true, or
// OBSERVABILITY_CONFIG runtime.profiling=enabled) and serves GET only.
func TestRunProfiling(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"default", map[string]string{}, false},
		{"1.15 ENABLE_PROFILING", map[string]string{"ENABLE_PROFILING": "true", "OBSERVABILITY_CONFIG": ""}, true},
		{"1.15 ENABLE_PROFILING=false", map[string]string{"ENABLE_PROFILING": "false", "OBSERVABILITY_CONFIG": ""}, false},
		{"newest runtime.profiling=enabled", map[string]string{"OBSERVABILITY_CONFIG": `{"runtime":{"profiling":"enabled"}}`}, true},
		{"newest runtime.profiling=disabled", map[string]string{"OBSERVABILITY_CONFIG": `{"runtime":{"profiling":"disabled"}}`}, false},
		{"either one is enough", map[string]string{"ENABLE_PROFILING": "true", "OBSERVABILITY_CONFIG": `{"runtime":{"profiling":"disabled"}}`}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["PROFILING_PORT"] = "0"
			q := startQP(t, echoApp(t), tc.env)
			_, running := q.addrs[serverProfile]
			if running != tc.want {
				t.Fatalf("profile server running = %v, want %v (servers %v)", running, tc.want, q.addrs)
			}
			if !running {
				return
			}
			if r := get(t, q.url(serverProfile, "/debug/pprof/"), nil); r.code != http.StatusOK || !strings.Contains(r.body, "goroutine") {
				t.Errorf("GET /debug/pprof/: %d %.80q", r.code, r.body)
			}
			if r := get(t, q.url(serverProfile, "/debug/pprof/cmdline"), nil); r.code != http.StatusOK {
				t.Errorf("GET /debug/pprof/cmdline: %d", r.code)
			}
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol", "/debug/pprof/heap"} {
				req, _ := http.NewRequest(http.MethodPost, q.url(serverProfile, path), strings.NewReader("x"))
				if r := do(t, nil, req); r.code != http.StatusMethodNotAllowed {
					t.Errorf("POST %s: %d, want 405", path, r.code)
				}
			}
			if r := get(t, q.url(serverProfile, "/other"), nil); r.code != http.StatusNotFound {
				t.Errorf("GET /other: %d, want 404", r.code)
			}
		})
	}
}
