package observability

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkMetricsLayers measures the two metrics layers around a handler
// that writes 2 bytes, against that handler alone. Each iteration is one
// request through both layers. "sync" waits, inside the timed region, until
// the OpenCensus worker has aggregated every value, so it counts the
// worker's CPU too (on another core, it overlaps with the requests).
func BenchmarkMetricsLayers(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://svc.example/", nil)
		r.Header.Set("User-Agent", "bench")
		r.Header.Set("Knative-Serving-Default-Route", "true")
		return r
	}
	newMetrics := func(b *testing.B, gen *Generation) *Metrics {
		cfg := testIdentity
		cfg.Generation = gen
		cfg.RouteTag = routeTagHeaders
		m, err := NewMetrics(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Stop)
		return m
	}
	sync := func(m *Metrics) {
		m.flush()
		m.meter.Find("") // a round trip through the worker: everything before it is done
	}
	w := discard{h: http.Header{}}

	b.Run("off", func(b *testing.B) {
		r := newReq()
		b.ReportAllocs()
		for b.Loop() {
			ok.ServeHTTP(w, r)
		}
	})
	for _, gen := range []*Generation{Generation115, GenerationNewest} {
		b.Run(gen.Name, func(b *testing.B) {
			b.Run("on", func(b *testing.B) {
				m := newMetrics(b, gen)
				h := m.RequestHandler(m.AppHandler(ok))
				r := newReq()
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
				sync(m)
			})
			b.Run("on/parallel", func(b *testing.B) {
				m := newMetrics(b, gen)
				h := m.RequestHandler(m.AppHandler(ok))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					r := newReq()
					for pb.Next() {
						h.ServeHTTP(w, r)
					}
				})
				sync(m)
			})
			b.Run("probe", func(b *testing.B) {
				m := newMetrics(b, gen)
				h := m.RequestHandler(m.AppHandler(ok))
				r := newReq()
				r.Header.Set("K-Network-Probe", "queue")
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
			})
			b.Run("transport", func(b *testing.B) {
				// The client layer around a round tripper that answers at once.
				m := newMetrics(b, gen)
				rt := m.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1}, nil
				}))
				r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil)
				b.ReportAllocs()
				for b.Loop() {
					rt.RoundTrip(r)
				}
				sync(m)
			})
		})
	}
	b.Run("time.Now", func(b *testing.B) {
		// For scale: each layer reads the clock twice.
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		_ = t
	})
}

// discard is a ResponseWriter that throws the response away.
type discard struct{ h http.Header }

func (w discard) Header() http.Header         { return w.h }
func (w discard) Write(p []byte) (int, error) { return len(p), nil }
func (w discard) WriteHeader(int)             {}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
