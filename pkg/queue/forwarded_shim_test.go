package queue

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// runForwardedShim passes a request with the given headers through the shim and
// returns the headers next saw.
func runForwardedShim(t testing.TB, in http.Header) http.Header {
	t.Helper()
	var seen http.Header
	calls := 0
	h := ForwardedShimHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		seen = r.Header.Clone()
		w.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	req.Header = in
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if calls != 1 {
		t.Fatalf("next called %d times, want 1", calls)
	}
	if rec.Code != http.StatusTeapot {
		t.Fatalf("response status %d, want next's %d", rec.Code, http.StatusTeapot)
	}
	return seen
}

func TestForwardedShim(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want []string // Forwarded values next sees; nil: header absent
	}{{
		name: "no headers",
		in:   http.Header{},
	}, {
		name: "unrelated headers",
		in:   http.Header{"X-Forwarded-By": {"1.1.1.1"}, "X-Real-Ip": {"2.2.2.2"}},
	}, {
		name: "empty values count as absent",
		in:   http.Header{"X-Forwarded-For": {""}, "X-Forwarded-Proto": {""}, "X-Forwarded-Host": {""}},
	}, {
		name: "forwarded present is untouched",
		in:   http.Header{"Forwarded": {"for=9.9.9.9"}, "X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}},
		want: []string{"for=9.9.9.9"},
	}, {
		name: "forwarded present with several values is untouched",
		in:   http.Header{"Forwarded": {"for=a", "for=b"}, "X-Forwarded-Host": {"h"}},
		want: []string{"for=a", "for=b"},
	}, {
		name: "empty forwarded is replaced",
		in:   http.Header{"Forwarded": {""}, "X-Forwarded-For": {"1.2.3.4"}},
		want: []string{"for=1.2.3.4"},
	}, {
		name: "contract example",
		in:   http.Header{"X-Forwarded-For": {"1.2.3.4, ::1"}, "X-Forwarded-Proto": {"https"}},
		want: []string{`for=1.2.3.4;proto=https, for="[::1]"`},
	}, {
		name: "only xff single",
		in:   http.Header{"X-Forwarded-For": {"1.2.3.4"}},
		want: []string{"for=1.2.3.4"},
	}, {
		name: "only xff multiple, untrimmed",
		in:   http.Header{"X-Forwarded-For": {" 1.1.1.1 ,2.2.2.2,\t3.3.3.3 "}},
		want: []string{"for=1.1.1.1, for=2.2.2.2, for=3.3.3.3"},
	}, {
		name: "only xfh",
		in:   http.Header{"X-Forwarded-Host": {"h"}},
		want: []string{"host=h"},
	}, {
		name: "only xfp",
		in:   http.Header{"X-Forwarded-Proto": {"https"}},
		want: []string{"proto=https"},
	}, {
		name: "xfh and xfp",
		in:   http.Header{"X-Forwarded-Host": {"example.com"}, "X-Forwarded-Proto": {"http"}},
		want: []string{"host=example.com;proto=http"},
	}, {
		name: "xff and xfh",
		in:   http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8"}, "X-Forwarded-Host": {"example.com"}},
		want: []string{"for=1.2.3.4;host=example.com, for=5.6.7.8"},
	}, {
		name: "all three",
		in:   http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8"}, "X-Forwarded-Host": {"example.com"}, "X-Forwarded-Proto": {"https"}},
		want: []string{"for=1.2.3.4;host=example.com;proto=https, for=5.6.7.8"},
	}, {
		name: "ipv6 first",
		in:   http.Header{"X-Forwarded-For": {"2001:db8::1, 10.0.0.1"}},
		want: []string{`for="[2001:db8::1]", for=10.0.0.1`},
	}, {
		name: "ipv4 with port counts as ipv6 (Knative's rule)",
		in:   http.Header{"X-Forwarded-For": {"10.0.0.1:8080"}},
		want: []string{`for="[10.0.0.1:8080]"`},
	}, {
		name: "empty nodes kept",
		in:   http.Header{"X-Forwarded-For": {", ,"}},
		want: []string{"for=, for=, for="},
	}, {
		name: "empty nodes kept with proto",
		in:   http.Header{"X-Forwarded-For": {", ,"}, "X-Forwarded-Proto": {"https"}},
		want: []string{"for=;proto=https, for=, for="},
	}, {
		name: "blank xff is one empty node",
		in:   http.Header{"X-Forwarded-For": {"  "}, "X-Forwarded-Host": {"h"}},
		want: []string{"for=;host=h"},
	}, {
		name: "trailing empty node",
		in:   http.Header{"X-Forwarded-For": {"1.2.3.4,"}},
		want: []string{"for=1.2.3.4, for="},
	}, {
		name: "only first header line is used",
		in:   http.Header{"X-Forwarded-For": {"1.1.1.1", "2.2.2.2"}, "X-Forwarded-Proto": {"https", "http"}},
		want: []string{"for=1.1.1.1;proto=https"},
	}, {
		name: "host and proto copied verbatim",
		in:   http.Header{"X-Forwarded-Host": {" a:80 "}, "X-Forwarded-Proto": {"h,t"}},
		want: []string{"host= a:80 ;proto=h,t"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.in.Clone()
			got := runForwardedShim(t, tc.in)
			if !slices.Equal(got["Forwarded"], tc.want) {
				t.Errorf("Forwarded = %q, want %q", got["Forwarded"], tc.want)
			}
			// Nothing but Forwarded changes.
			delete(got, "Forwarded")
			delete(orig, "Forwarded")
			if len(got) != len(orig) {
				t.Errorf("headers %v, want %v plus Forwarded", got, orig)
			}
			for k, v := range orig {
				if !slices.Equal(got[k], v) {
					t.Errorf("header %s = %q, want %q unchanged", k, got[k], v)
				}
			}
		})
	}
}

// referenceForwarded is a deliberately simple, independent statement of
// the §3.5 format, used as the oracle in the fuzz target.
func referenceForwarded(xff, xfh, xfp string) string {
	var elems []string
	if xff != "" {
		for _, n := range strings.Split(xff, ",") {
			n = strings.TrimSpace(n)
			if strings.Contains(n, ":") {
				n = `"[` + n + `]"`
			}
			elems = append(elems, "for="+n)
		}
	}
	var params []string
	if len(elems) > 0 {
		params = append(params, elems[0])
	}
	if xfh != "" {
		params = append(params, "host="+xfh)
	}
	if xfp != "" {
		params = append(params, "proto="+xfp)
	}
	out := []string{strings.Join(params, ";")}
	if len(elems) > 1 {
		out = append(out, elems[1:]...)
	}
	return strings.Join(out, ", ")
}

func FuzzForwardedShim(f *testing.F) {
	seeds := [][4]string{
		{"", "1.2.3.4, ::1", "https", ""},
		{"", ", ,", "", ""},
		{"", "", "", "h"},
		{"", "", "http", ""},
		{"for=x", "1.1.1.1", "", ""},
		{"", "a,b,c", "p", "h"},
		{"", `"quoted", x`, "", ""},
		{"", "  ", "", ""},
		{"", "fe80::1%eth0, 10.0.0.1:80", "https", "example.com:443"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, fwd, xff, xfp, xfh string) {
		in := http.Header{}
		for k, v := range map[string]string{"Forwarded": fwd, "X-Forwarded-For": xff, "X-Forwarded-Proto": xfp, "X-Forwarded-Host": xfh} {
			if v != "" {
				in[k] = []string{v}
			}
		}
		got := runForwardedShim(t, in)["Forwarded"]

		switch {
		case fwd != "":
			if len(got) != 1 || got[0] != fwd {
				t.Fatalf("Forwarded %q was changed to %q", fwd, got)
			}
			return
		case xff == "" && xfp == "" && xfh == "":
			if got != nil {
				t.Fatalf("Forwarded %q set without X-Forwarded-* headers", got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("Forwarded = %q, want one value", got)
		}
		if want := referenceForwarded(xff, xfh, xfp); got[0] != want {
			t.Fatalf("Forwarded = %q, want %q (xff=%q xfh=%q xfp=%q)", got[0], want, xff, xfh, xfp)
		}
		// Structural check: when no input can fake a separator or an
		// element, there is one for= per XFF node and one ", " between them.
		if xff != "" && !strings.ContainsAny(xff+xfh+xfp, `"`) &&
			!strings.Contains(xff+xfh+xfp, "for=") && !strings.Contains(xfh+xfp, ",") {
			nodes := strings.Count(xff, ",") + 1
			if n := strings.Count(got[0], "for="); n != nodes {
				t.Fatalf("Forwarded %q has %d for= elements, want %d", got[0], n, nodes)
			}
			if n := len(strings.Split(got[0], ", ")); n != nodes {
				t.Fatalf("Forwarded %q has %d elements, want %d", got[0], n, nodes)
			}
		}
	})
}

func BenchmarkForwardedShim(b *testing.B) {
	cases := []struct {
		name string
		hdr  http.Header
	}{
		{"none", http.Header{"User-Agent": {"bench"}}},
		{"forwarded present", http.Header{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"1.2.3.4"}}},
		{"xff+xfp", http.Header{"X-Forwarded-For": {"1.2.3.4, ::1"}, "X-Forwarded-Proto": {"https"}}},
		{"xff3+xfh+xfp", http.Header{"X-Forwarded-For": {"1.2.3.4, 10.0.0.1, 2001:db8::1"}, "X-Forwarded-Host": {"example.com"}, "X-Forwarded-Proto": {"https"}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// The shim sets Forwarded; drop it again each iteration unless
			// the case starts with one (then the shim must leave it alone).
			_, hadForwarded := c.hdr["Forwarded"]
			h := ForwardedShimHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			req.Header = c.hdr.Clone()
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
				if !hadForwarded {
					delete(req.Header, "Forwarded")
				}
			}
		})
	}
}
