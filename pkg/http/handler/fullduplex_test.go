package handler

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const fullDuplexLogMessage = "Unable to enable full duplex"

func observedLogger() (*zap.SugaredLogger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core).Sugar(), logs
}

// checkFullDuplexLogs asserts that exactly want "Unable to enable full
// duplex" errors were logged, each at ERROR with an error field.
func checkFullDuplexLogs(t *testing.T, logs *observer.ObservedLogs, want int) {
	t.Helper()
	entries := logs.All()
	if len(entries) != want {
		t.Fatalf("got %d log entries (%v), want %d", len(entries), entries, want)
	}
	for _, e := range entries {
		if e.Level != zapcore.ErrorLevel || e.Message != fullDuplexLogMessage {
			t.Errorf("log entry = %s %q, want ERROR %q", e.Level, e.Message, fullDuplexLogMessage)
		}
		if _, ok := e.ContextMap()["error"]; !ok {
			t.Errorf("log entry has no error field: %v", e.ContextMap())
		}
	}
}

// TestFullDuplexHTTP1 writes and flushes part of the response before
// reading the request body. Without full duplex, net/http's HTTP/1 server
// discards the unread body when the response starts, so the handler reads
// nothing.
func TestFullDuplexHTTP1(t *testing.T) {
	tests := []struct {
		name     string
		wrap     bool
		wantBody string
	}{
		{name: "full duplex", wrap: true, wantBody: "hello echo:world"},
		{name: "control: without the shim the body is gone", wrap: false, wantBody: "hello echo:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := observedLogger()
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "hello ")
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("Flush: %v", err)
				}
				body, _ := io.ReadAll(r.Body)
				_, _ = io.WriteString(w, "echo:"+string(body))
			})
			if tc.wrap {
				h = FullDuplex(h, logger)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()

			resp, err := srv.Client().Post(srv.URL, "text/plain", strings.NewReader("world"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			checkFullDuplexLogs(t, logs, 0)
		})
	}
}

// TestFullDuplexInterleaved exchanges lines over one request: the client
// sends each line only after it has read the answer to the previous one.
func TestFullDuplexInterleaved(t *testing.T) {
	for _, http2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if http2 {
			name = "HTTP/2"
		}
		t.Run(name, func(t *testing.T) {
			logger, logs := observedLogger()
			srv := httptest.NewUnstartedServer(FullDuplex(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				_, _ = io.WriteString(w, r.Proto+" ready\n")
				_ = rc.Flush()
				sc := bufio.NewScanner(r.Body)
				for sc.Scan() {
					_, _ = io.WriteString(w, "got:"+sc.Text()+"\n")
					_ = rc.Flush()
				}
			}), logger))
			if http2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pr, pw := io.Pipe()
			defer pw.Close()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, pr)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := bufio.NewReader(resp.Body)
			readLine := func(want string) {
				t.Helper()
				got, err := lines.ReadString('\n')
				if err != nil || got != want {
					t.Fatalf("read %q, %v; want %q", got, err, want)
				}
			}
			readLine(resp.Proto + " ready\n")
			for _, msg := range []string{"ping", "pong"} {
				if _, err := io.WriteString(pw, msg+"\n"); err != nil {
					t.Fatal(err)
				}
				readLine("got:" + msg + "\n")
			}
			pw.Close()
			if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
				t.Errorf("after close: %q, %v; want clean EOF", rest, err)
			}
			wantMajor := 1
			if http2 {
				wantMajor = 2
			}
			if resp.ProtoMajor != wantMajor {
				t.Errorf("protocol = %s, want HTTP/%d", resp.Proto, wantMajor)
			}
			checkFullDuplexLogs(t, logs, 0)
		})
	}
}

// TestFullDuplexHTTP2 checks that HTTP/2 requests are served through the
// shim. HTTP/2 streams are always full duplex; the HTTP/2 servers of current
// Go and golang.org/x/net accept EnableFullDuplex as a no-op, so nothing is
// logged. (Older ones returned http.ErrNotSupported, which the shim logged
// on every request; TestFullDuplexUnsupportedWriter covers that path.)
func TestFullDuplexHTTP2(t *testing.T) {
	logger, logs := observedLogger()
	srv := httptest.NewUnstartedServer(FullDuplex(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "served "+r.Proto)
	}), logger))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	for range 2 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("response protocol = %s, want HTTP/2", resp.Proto)
		}
		if resp.StatusCode != http.StatusOK || string(body) != "served HTTP/2.0" {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, "served HTTP/2.0")
		}
	}
	checkFullDuplexLogs(t, logs, 0)
}

func TestFullDuplexUnsupportedWriter(t *testing.T) {
	tests := []struct {
		name     string
		logger   bool
		wantLogs int
	}{
		{name: "logged", logger: true, wantLogs: 1},
		{name: "nil logger", logger: false, wantLogs: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := observedLogger()
			if !tc.logger {
				logger = nil
			}
			h := FullDuplex(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusTeapot)
			}), logger)
			rec := httptest.NewRecorder() // has no EnableFullDuplex
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != http.StatusTeapot {
				t.Errorf("status = %d, want %d from the next handler", rec.Code, http.StatusTeapot)
			}
			checkFullDuplexLogs(t, logs, tc.wantLogs)
		})
	}
}

// fullDuplexWriter is a discardWriter that supports EnableFullDuplex.
type fullDuplexWriter struct {
	discardWriter
	enabled int
}

func (w *fullDuplexWriter) EnableFullDuplex() error {
	w.enabled++
	return nil
}

func TestFullDuplexUnwrapsWriter(t *testing.T) {
	logger, logs := observedLogger()
	inner := &fullDuplexWriter{discardWriter: discardWriter{h: http.Header{}}}
	h := FullDuplex(nopHandler{}, logger)
	h.ServeHTTP(unwrappingWriter{inner}, httptest.NewRequest(http.MethodGet, "/", nil))
	if inner.enabled != 1 {
		t.Errorf("EnableFullDuplex calls on the wrapped writer = %d, want 1", inner.enabled)
	}
	checkFullDuplexLogs(t, logs, 0)
}

// unwrappingWriter hides its writer's methods except through Unwrap, as
// the outer layers of the chain do.
type unwrappingWriter struct{ w http.ResponseWriter }

func (u unwrappingWriter) Header() http.Header         { return u.w.Header() }
func (u unwrappingWriter) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u unwrappingWriter) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrappingWriter) Unwrap() http.ResponseWriter { return u.w }

func BenchmarkFullDuplex(b *testing.B) {
	h := FullDuplex(nopHandler{}, zap.NewNop().Sugar())
	w := &fullDuplexWriter{discardWriter: discardWriter{h: http.Header{}}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(w, r)
	}
}
