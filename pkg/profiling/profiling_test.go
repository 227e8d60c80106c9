package profiling

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime/pprof"
	"strings"
	"testing"
)

func serve(t *testing.T, method, target string) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, httptest.NewRequest(method, target, nil))
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var gzipMagic = []byte{0x1f, 0x8b}

func TestHandler(t *testing.T) {
	pc := reflect.ValueOf(TestHandler).Pointer()
	for _, tc := range []struct {
		name, method, target string
		code                 int
		contentType          string
		check                func(body string) bool
	}{
		{"index", "GET", "/debug/pprof/", 200, "text/html; charset=utf-8",
			func(b string) bool { return strings.Contains(b, "goroutine?debug=1") && strings.Contains(b, ">heap<") }},
		{"heap, protobuf", "GET", "/debug/pprof/heap", 200, "application/octet-stream",
			func(b string) bool { return strings.HasPrefix(b, string(gzipMagic)) }},
		{"heap after gc, text", "GET", "/debug/pprof/heap?gc=1&debug=1", 200, "text/plain; charset=utf-8",
			func(b string) bool { return strings.HasPrefix(b, "heap profile:") }},
		{"goroutine dump", "GET", "/debug/pprof/goroutine?debug=2", 200, "text/plain; charset=utf-8",
			func(b string) bool { return strings.Contains(b, "goroutine ") && strings.Contains(b, "TestHandler") }},
		{"allocs", "GET", "/debug/pprof/allocs", 200, "application/octet-stream",
			func(b string) bool { return strings.HasPrefix(b, string(gzipMagic)) }},
		{"unknown profile", "GET", "/debug/pprof/nope", 404, "text/plain; charset=utf-8",
			func(b string) bool { return b == "Unknown profile\n" }},
		{"delta profile refused", "GET", "/debug/pprof/heap?seconds=5", 400, "text/plain; charset=utf-8",
			func(b string) bool { return strings.Contains(b, "-diff_base") }},
		{"cmdline", "GET", "/debug/pprof/cmdline", 200, "text/plain; charset=utf-8",
			func(b string) bool { return b == strings.Join(os.Args, "\x00") }},
		{"symbol, no query", "GET", "/debug/pprof/symbol", 200, "text/plain; charset=utf-8",
			func(b string) bool { return b == "num_symbols: 1\n" }},
		{"symbol lookup", "GET", fmt.Sprintf("/debug/pprof/symbol?%#x+junk+0", pc), 200, "text/plain; charset=utf-8",
			func(b string) bool {
				return b == fmt.Sprintf("num_symbols: 1\n%#x github.com/queue-proxy/queue-proxy/pkg/profiling.TestHandler\n", pc)
			}},
		{"cpu profile", "GET", "/debug/pprof/profile?seconds=0.05", 200, "application/octet-stream",
			func(b string) bool { return strings.HasPrefix(b, string(gzipMagic)) }},
		{"cpu profile, bad seconds", "GET", "/debug/pprof/profile?seconds=-1", 400, "text/plain; charset=utf-8",
			func(b string) bool { return strings.Contains(b, "positive number") }},
		{"trace", "GET", "/debug/pprof/trace?seconds=0.05", 200, "application/octet-stream",
			func(b string) bool { return strings.HasPrefix(b, "go 1.") }},
		{"trace, bad seconds", "GET", "/debug/pprof/trace?seconds=x", 400, "text/plain; charset=utf-8",
			func(b string) bool { return strings.Contains(b, `bad seconds "x"`) }},
		{"POST refused", "POST", "/debug/pprof/symbol", 405, "text/plain; charset=utf-8", nil},
		{"PUT refused", "PUT", "/debug/pprof/heap", 405, "text/plain; charset=utf-8", nil},
		{"outside the prefix", "GET", "/debug/other", 404, "text/plain; charset=utf-8", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := serve(t, tc.method, tc.target)
			if resp.StatusCode != tc.code || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("%s %s = %d %q, want %d %q; body %.200q", tc.method, tc.target, resp.StatusCode, resp.Header.Get("Content-Type"), tc.code, tc.contentType, body)
			}
			if tc.check != nil && !tc.check(body) {
				t.Errorf("%s %s: unexpected body %.300q", tc.method, tc.target, body)
			}
		})
	}
}

// TestCPUProfileBusy: a CPU profile request while another CPU profile runs
// gets 500, without the attachment header.
func TestCPUProfileBusy(t *testing.T) {
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	resp, body := serve(t, "GET", "/debug/pprof/profile?seconds=0.05")
	if resp.StatusCode != 500 || !strings.Contains(body, "Could not enable CPU profiling") {
		t.Errorf("CPU profile while one runs = %d %q, want 500", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("error response kept Content-Disposition %q", resp.Header.Get("Content-Disposition"))
	}
}
