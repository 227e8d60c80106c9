package health

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbeHandler(t *testing.T) {
	const (
		textPlain = "text/plain; charset=utf-8"
		yes       = 1
		no        = 0
		none      = -1 // prober is nil
	)
	tests := []struct {
		name        string
		probeHeader []string // K-Network-Probe values; nil means absent
		prober      int
		wantStatus  int
		wantBody    string
		wantCType   string
		wantLength  string // Content-Length set by the handler
		wantNosniff bool
		wantCalls   int
	}{{
		name:        "healthy",
		probeHeader: []string{"queue"},
		prober:      yes,
		wantStatus:  http.StatusOK,
		wantBody:    "queue",
		wantCType:   textPlain,
		wantLength:  "5",
		wantCalls:   1,
	}, {
		name:        "first header value decides",
		probeHeader: []string{"queue", "probe"},
		prober:      yes,
		wantStatus:  http.StatusOK,
		wantBody:    "queue",
		wantCType:   textPlain,
		wantLength:  "5",
		wantCalls:   1,
	}, {
		name:        "not ready",
		probeHeader: []string{"queue"},
		prober:      no,
		wantStatus:  http.StatusServiceUnavailable,
		wantBody:    "",
		wantCalls:   1,
	}, {
		name:        "no prober",
		probeHeader: []string{"queue"},
		prober:      none,
		wantStatus:  http.StatusInternalServerError,
		wantBody:    "no probe\n",
		wantCType:   textPlain,
		wantNosniff: true,
	}, {
		name:        "missing header",
		prober:      yes,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: \n",
		wantCType:   textPlain,
		wantNosniff: true,
	}, {
		name:        "missing header is checked before the prober",
		prober:      none,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: \n",
		wantCType:   textPlain,
		wantNosniff: true,
	}, {
		name:        "empty header",
		probeHeader: []string{""},
		prober:      yes,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: \n",
		wantCType:   textPlain,
		wantNosniff: true,
	}, {
		name:        "network probe value",
		probeHeader: []string{"probe"},
		prober:      yes,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: probe\n",
		wantCType:   textPlain,
		wantNosniff: true,
	}, {
		name:        "value is case sensitive",
		probeHeader: []string{"Queue"},
		prober:      no,
		wantStatus:  http.StatusBadRequest,
		wantBody:    "unexpected probe header value: Queue\n",
		wantCType:   textPlain,
		wantNosniff: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var prober func() bool
			if tc.prober != none {
				prober = func() bool {
					calls++
					return tc.prober == yes
				}
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("User-Agent", "kube-probe/1.30")
			if tc.probeHeader != nil {
				req.Header["K-Network-Probe"] = tc.probeHeader
			}
			rec := httptest.NewRecorder()
			ProbeHandler(prober).ServeHTTP(rec, req)

			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			h := rec.Result().Header
			if got := h.Get("Content-Type"); got != tc.wantCType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantCType)
			}
			if got := h.Get("Content-Length"); got != tc.wantLength {
				t.Errorf("Content-Length = %q, want %q", got, tc.wantLength)
			}
			if got := h.Get("X-Content-Type-Options") == "nosniff"; got != tc.wantNosniff {
				t.Errorf("X-Content-Type-Options nosniff = %v, want %v", got, tc.wantNosniff)
			}
			if calls != tc.wantCalls {
				t.Errorf("prober calls = %d, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// TestProbeHandlerWire checks what a client sees from a real server.
func TestProbeHandlerWire(t *testing.T) {
	tests := []struct {
		name       string
		ready      bool
		wantStatus int
		wantBody   string
		wantCType  string
		wantLength int64
	}{
		{name: "ready", ready: true, wantStatus: http.StatusOK, wantBody: "queue", wantCType: "text/plain; charset=utf-8", wantLength: 5},
		{name: "not ready", ready: false, wantStatus: http.StatusServiceUnavailable, wantBody: "", wantLength: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(ProbeHandler(func() bool { return tc.ready }))
			defer srv.Close()
			// Several requests: the shared header values must not be
			// disturbed by serving.
			for range 3 {
				req, err := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("K-Network-Probe", "queue")
				req.Header.Set("User-Agent", "Knative-Activator-Probe")
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody {
					t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
				}
				if got := resp.Header.Get("Content-Type"); got != tc.wantCType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantCType)
				}
				if resp.ContentLength != tc.wantLength {
					t.Errorf("Content-Length = %d, want %d", resp.ContentLength, tc.wantLength)
				}
				if len(resp.TransferEncoding) != 0 {
					t.Errorf("Transfer-Encoding = %v, want none", resp.TransferEncoding)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that allocates nothing per request.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func BenchmarkProbeHandler(b *testing.B) {
	ready := func() bool { return true }
	notReady := func() bool { return false }
	probeReq := httptest.NewRequest(http.MethodGet, "/", nil)
	probeReq.Header.Set("K-Network-Probe", "queue")
	probeReq.Header.Set("User-Agent", "kube-probe/1.30")

	benches := []struct {
		name   string
		prober func() bool
		writer func() http.ResponseWriter
	}{
		{name: "ready/discard-writer", prober: ready, writer: func() http.ResponseWriter { return &discardWriter{h: make(http.Header, 4)} }},
		{name: "not-ready/discard-writer", prober: notReady, writer: func() http.ResponseWriter { return &discardWriter{h: make(http.Header, 4)} }},
		{name: "ready/recorder", prober: ready},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			h := ProbeHandler(bb.prober)
			var w http.ResponseWriter
			if bb.writer != nil {
				w = bb.writer()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if bb.writer == nil {
					h.ServeHTTP(httptest.NewRecorder(), probeReq)
					continue
				}
				clear(w.Header())
				h.ServeHTTP(w, probeReq)
			}
		})
	}
}

func BenchmarkRecorderBaseline(b *testing.B) {
	// What httptest.ResponseRecorder costs on its own for a 5-byte
	// text/plain 200, to compare with BenchmarkProbeHandler/ready/recorder.
	body := []byte("queue")
	b.ReportAllocs()
	for range b.N {
		rec := httptest.NewRecorder()
		rec.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		rec.WriteHeader(http.StatusOK)
		_, _ = rec.Write(body)
	}
}
