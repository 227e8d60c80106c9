package observability

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
	}{
		{"svc.example", "svc.example", -1},
		{"svc.example:8080", "svc.example", 8080},
		{"svc.example:", "svc.example", -1},
		{"svc.example:http", "svc.example", -1},
		{"svc.example:70000", "svc.example", -1},
		{"[::1]", "::1", -1},
		{"[::1]:443", "::1", 443},
		{"[::1", "", -1},
		{"a:b:c", "", -1},
		{"", "", -1},
	}
	for _, tc := range tests {
		if h, p := splitHostPort(tc.in); h != tc.host || p != tc.port {
			t.Errorf("splitHostPort(%q) = %q, %d; want %q, %d", tc.in, h, p, tc.host, tc.port)
		}
	}
}

func TestStandardMethod(t *testing.T) {
	for in, want := range map[string]string{
		"GET": "GET", "get": "GET", "Patch": "PATCH", "PURGE": "_OTHER", "": "_OTHER", "GETX": "_OTHER",
	} {
		if got := standardMethod(in); got != want {
			t.Errorf("standardMethod(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNonDefaultPortAndProto(t *testing.T) {
	if nonDefaultPort(false, 80) != -1 || nonDefaultPort(true, 443) != -1 || nonDefaultPort(true, 80) != 80 || nonDefaultPort(false, 0) != -1 {
		t.Error("nonDefaultPort: default ports must be left out, others kept")
	}
	for _, tc := range []struct {
		major, minor int
		want         string
	}{{1, 1, "1.1"}, {1, 0, "1.0"}, {2, 0, "2"}, {3, 0, "3.0"}, {0, 0, ""}} {
		if got := protoVersion(tc.major, tc.minor); got != tc.want {
			t.Errorf("protoVersion(%d, %d) = %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

// FuzzSplitHostPort: the Host header is the client's. A port, when found,
// is 0-65535 and the input ends with it; the host is part of the input.
func FuzzSplitHostPort(f *testing.F) {
	for _, s := range []string{"a", "a:1", "[::1]:2", "[::1", ":", "a:b:c", "[x]:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p := splitHostPort(s)
		if !strings.Contains(s, h) {
			t.Errorf("host %q not in %q", h, s)
		}
		if p >= 0 {
			if p > 65535 || !strings.HasSuffix(s, ":"+strconv.Itoa(p)) && !strings.HasSuffix(s, ":0"+strconv.Itoa(p)) {
				if _, ps, err := net.SplitHostPort(s); err != nil || ps == "" {
					t.Errorf("port %d from %q", p, s)
				}
			}
		}
		_ = standardMethod(s)
		_ = isProbe(http.Header{"User-Agent": {s}})
	})
}
