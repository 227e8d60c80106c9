package sharedmain

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckDebugAddress(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8023", true},
		{":8023", true},
		{"[::1]:8023", true},
		{"0.0.0.0:0", true},
		{"localhost:8023", true},
		{"off", true},
		{"OFF", true},
		{"", true},
		{"8023", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:-1", false},
		{"debug.example.com:8023", false},
		{"disabled", false},
	}
	for _, tc := range cases {
		err := checkDebugAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkDebugAddress(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "QP_DEBUG_ADDRESS: ") {
			t.Errorf("checkDebugAddress(%q) = %q: does not name the variable", tc.addr, err)
		}
	}
}

// TestDebugMux: /debug/config serves the document as it was given, GET and
// HEAD only; other paths are not found.
func TestDebugMux(t *testing.T) {
	doc := []byte(`{"a": 1}` + "\n")
	srv := httptest.NewServer(debugMux(func() ([]byte, error) { return doc, nil }))
	defer srv.Close()
	cases := []struct {
		method, path string
		code         int
		body         string
	}{
		{http.MethodGet, "/debug/config", http.StatusOK, string(doc)},
		{http.MethodHead, "/debug/config", http.StatusOK, ""},
		{http.MethodPost, "/debug/config", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/debug/config/", http.StatusNotFound, ""},
		{http.MethodGet, "/debug/", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(""))
		r := do(t, nil, req)
		if r.code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, r.code, tc.code)
		}
		if tc.code != http.StatusOK {
			continue
		}
		if r.body != tc.body {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, r.body, tc.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
	}
}

// TestDebugConfigFromRun: a running queue-proxy serves on /debug/config
// exactly what PrintConfig prints for its environment, on the address
// QP_DEBUG_ADDRESS gives: loopback by default, every interface with :port.
func TestDebugConfigFromRun(t *testing.T) {
	cases := []struct {
		name, addr string
		loopback   bool
	}{
		{"loopback", "127.0.0.1:0", true},
		{"every interface", ":0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearTracingEnv(t)
			env := map[string]string{
				"QP_DEBUG_ADDRESS":     tc.addr,
				"OBSERVABILITY_CONFIG": `{"tracing":{"protocol":"grpc","endpoint":"http://u:debugpw@127.0.0.1:1"},"requestMetrics":{"protocol":"prometheus","endpoint":"127.0.0.1:0"}}`,
			}
			q := startQP(t, echoApp(t), env)
			bound, ok := q.addrs[serverDebug]
			if !ok {
				t.Fatalf("no debug listener; servers: %v", q.addrs)
			}
			host, _, _ := net.SplitHostPort(bound)
			if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() != tc.loopback || (!tc.loopback && !ip.IsUnspecified()) {
				t.Errorf("debug listener bound %s; want loopback=%v", bound, tc.loopback)
			}

			r := get(t, q.url(serverDebug, "/debug/config"), nil)
			if r.code != http.StatusOK {
				t.Fatalf("GET /debug/config: %d %s", r.code, r.body)
			}
			var want bytes.Buffer
			if err := PrintConfig(&want); err != nil {
				t.Fatal(err)
			}
			if r.body != want.String() {
				t.Errorf("/debug/config differs from PrintConfig:\n%s\nPrintConfig:\n%s", r.body, want.String())
			}
			if strings.Contains(r.body, "debugpw") {
				t.Errorf("/debug/config shows a secret:\n%s", r.body)
			}
		})
	}
}

// TestDebugListenerOff: QP_DEBUG_ADDRESS=off opens no debug listener.
func TestDebugListenerOff(t *testing.T) {
	q := startQP(t, echoApp(t), map[string]string{"QP_DEBUG_ADDRESS": "off"})
	if addr, ok := q.addrs[serverDebug]; ok {
		t.Errorf("debug listener on %s with QP_DEBUG_ADDRESS=off", addr)
	}
	if _, ok := q.addrs[serverMain]; !ok {
		t.Errorf("main server missing: %v", q.addrs)
	}
}

// TestDebugListenerPortInUse: a debug address already in use is a warning;
// queue-proxy serves on without the debug listener.
func TestDebugListenerPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := map[string]string{"QP_DEBUG_ADDRESS": taken.Addr().String()}
	logPath := logTo(t, env)
	q := startQP(t, echoApp(t), env)
	if addr, ok := q.addrs[serverDebug]; ok {
		t.Errorf("debug listener on %s, which was taken", addr)
	}
	if r := get(t, q.url(serverMain, "/"), nil); r.code != http.StatusOK {
		t.Errorf("main server: %d %s", r.code, r.body)
	}
	if log := readLog(t, logPath); !strings.Contains(log, "Debug listener not started") || !strings.Contains(log, taken.Addr().String()) {
		t.Errorf("no warning naming %s in the log:\n%s", taken.Addr(), log)
	}
}

// TestDebugListenerDefault: without QP_DEBUG_ADDRESS the debug listener is
// on 127.0.0.1:8023. Another process may hold that port while the test runs
// (parallel test binaries start queue-proxy with the default); then the
// test checks what queue-proxy does about it: a warning, and serving on.
func TestDebugListenerDefault(t *testing.T) {
	setEnv(t, baseEnv())
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DebugAddress != "127.0.0.1:8023" || debugAddress("") != "127.0.0.1:8023" {
		t.Fatalf("default QP_DEBUG_ADDRESS = %q, empty means %q", cfg.DebugAddress, debugAddress(""))
	}

	env := map[string]string{}
	logPath := logTo(t, env)
	q := startQP(t, echoApp(t), env) // startQP leaves QP_DEBUG_ADDRESS unset
	if addr, ok := q.addrs[serverDebug]; ok {
		if addr != "127.0.0.1:8023" {
			t.Errorf("debug listener on %s, want 127.0.0.1:8023", addr)
		}
		return
	}
	log := readLog(t, logPath)
	if !strings.Contains(log, "Debug listener not started") || !strings.Contains(log, "127.0.0.1:8023") {
		t.Errorf("no debug listener and no warning about 127.0.0.1:8023:\n%s", log)
	}
	t.Log("127.0.0.1:8023 was in use; checked the warning instead of the listener")
}
