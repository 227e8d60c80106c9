package http

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

type findMarker interface{ marker() string }

type markedWriter struct {
	http.ResponseWriter
	name string
}

func (m *markedWriter) marker() string { return m.name }

type unwrapper struct{ http.ResponseWriter }

func (u *unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

type opaque struct{ http.ResponseWriter } // no Unwrap

type selfUnwrap struct{ http.ResponseWriter }

func (s *selfUnwrap) Unwrap() http.ResponseWriter { return s }

type nilUnwrap struct{ http.ResponseWriter }

func (nilUnwrap) Unwrap() http.ResponseWriter { return nil }

func TestFindWriter(t *testing.T) {
	base := httptest.NewRecorder()
	inner := &markedWriter{base, "inner"}
	outer := &markedWriter{&unwrapper{inner}, "outer"}
	for _, tc := range []struct {
		name string
		w    http.ResponseWriter
		want string // "" = not found
	}{
		{"itself", inner, "inner"},
		{"through two unwraps", &unwrapper{&unwrapper{inner}}, "inner"},
		{"the first one", &unwrapper{outer}, "outer"},
		{"behind a writer without Unwrap", &unwrapper{opaque{inner}}, ""},
		{"none", &unwrapper{base}, ""},
		{"unwraps to itself", &selfUnwrap{base}, ""},
		{"unwraps to nil", nilUnwrap{base}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := FindWriter[findMarker](tc.w)
			got := ""
			if ok {
				got = m.marker()
			}
			if got != tc.want {
				t.Errorf("found %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkFindWriter finds a writer two unwraps away, as the queue layer
// finds the live stats' writer behind the timeout writer.
func BenchmarkFindWriter(b *testing.B) {
	w := &unwrapper{&unwrapper{&markedWriter{httptest.NewRecorder(), "x"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := FindWriter[findMarker](w); !ok {
			b.Fatal("not found")
		}
	}
}
