package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const errorLogPrefix = "error reverse proxying request; sockstat: "

func observedLogger() (*zap.SugaredLogger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core).Sugar(), logs
}

// withSockstat points sockstatPath at a file holding contents, or at a
// missing file when contents is nil, for the duration of the test.
func withSockstat(t *testing.T, contents []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sockstat")
	if contents != nil {
		if err := os.WriteFile(path, contents, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := sockstatPath
	sockstatPath = path
	t.Cleanup(func() { sockstatPath = old })
}

func TestErrorHandler(t *testing.T) {
	const sockstat = "sockets: used 42\nTCP: inuse 7 orphan 0 tw 3 alloc 9 mem 1\n"
	textHeader := http.Header{
		"Content-Type":           {"text/plain; charset=utf-8"},
		"X-Content-Type-Options": {"nosniff"},
	}

	tests := []struct {
		name       string
		err        error
		sockstat   []byte // nil: unreadable
		wantCode   int
		wantBody   string
		wantHeader http.Header
		wantLevel  zapcore.Level
		wantMsg    string
	}{{
		name:       "client canceled: nothing written",
		err:        context.Canceled,
		sockstat:   []byte(sockstat),
		wantCode:   http.StatusOK, // the recorder's default: WriteHeader never called
		wantHeader: http.Header{},
		wantLevel:  zapcore.DebugLevel,
		wantMsg:    "client canceled request",
	}, {
		name:       "wrapped cancel: nothing written",
		err:        fmt.Errorf("readfrom tcp: %w", context.Canceled),
		sockstat:   []byte(sockstat),
		wantCode:   http.StatusOK,
		wantHeader: http.Header{},
		wantLevel:  zapcore.DebugLevel,
		wantMsg:    "client canceled request",
	}, {
		name:       "transport error: 502 with sockstat in the log",
		err:        errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
		sockstat:   []byte(sockstat),
		wantCode:   http.StatusBadGateway,
		wantBody:   "dial tcp 127.0.0.1:1: connect: connection refused\n",
		wantHeader: textHeader,
		wantLevel:  zapcore.ErrorLevel,
		wantMsg:    errorLogPrefix + sockstat,
	}, {
		name:       "deadline is not a cancel: 502",
		err:        context.DeadlineExceeded,
		sockstat:   []byte(sockstat),
		wantCode:   http.StatusBadGateway,
		wantBody:   "context deadline exceeded\n",
		wantHeader: textHeader,
		wantLevel:  zapcore.ErrorLevel,
		wantMsg:    errorLogPrefix + sockstat,
	}, {
		name:       "unreadable sockstat: empty",
		err:        errors.New("boom"),
		wantCode:   http.StatusBadGateway,
		wantBody:   "boom\n",
		wantHeader: textHeader,
		wantLevel:  zapcore.ErrorLevel,
		wantMsg:    errorLogPrefix,
	}}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withSockstat(t, tc.sockstat)
			logger, logs := observedLogger()
			w := httptest.NewRecorder()

			ErrorHandler(logger)(w, httptest.NewRequest(http.MethodGet, "/", nil), tc.err)

			if w.Code != tc.wantCode {
				t.Errorf("status = %d, want %d", w.Code, tc.wantCode)
			}
			if got := w.Body.String(); got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			if got := w.Result().Header; !reflect.DeepEqual(got, tc.wantHeader) {
				t.Errorf("header = %v, want %v", got, tc.wantHeader)
			}
			if w.Flushed {
				t.Error("response was flushed")
			}

			entries := logs.AllUntimed()
			if len(entries) != 1 {
				t.Fatalf("got %d log entries, want 1: %v", len(entries), entries)
			}
			e := entries[0]
			if e.Level != tc.wantLevel || e.Message != tc.wantMsg {
				t.Errorf("log = %v %q, want %v %q", e.Level, e.Message, tc.wantLevel, tc.wantMsg)
			}
			wantFields := map[string]any{"error": tc.err.Error()}
			if got := e.ContextMap(); !reflect.DeepEqual(got, wantFields) {
				t.Errorf("log fields = %v, want only %v", got, wantFields)
			}
			if e.Stack != "" {
				t.Errorf("log has a stack trace:\n%s", e.Stack)
			}
		})
	}
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProxyDialRefused(t *testing.T) {
	withSockstat(t, []byte("sockets: used 1\n"))
	logger, logs := observedLogger()
	target := closedPort(t)
	rp := NewHeaderPruningReverseProxy(target, NoHostOverride, RevisionHeaders, false)
	rp.Transport = NewProxyTransport(0)
	rp.ErrorHandler = ErrorHandler(logger)
	front, _ := startServer(t, rp, false)

	resp, err := newClient(t).Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", resp.StatusCode)
	}
	wantBody := "dial tcp " + target + ": connect: connection refused\n"
	if string(body) != wantBody {
		t.Errorf("body = %q, want %q", body, wantBody)
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
	resp.Header.Del("Date")
	wantHeader := http.Header{
		"Content-Type":           {"text/plain; charset=utf-8"},
		"X-Content-Type-Options": {"nosniff"},
		"Content-Length":         {strconv.Itoa(len(wantBody))},
	}
	if !reflect.DeepEqual(resp.Header, wantHeader) {
		t.Errorf("header = %v, want %v", resp.Header, wantHeader)
	}

	errs := logs.FilterLevelExact(zapcore.ErrorLevel).AllUntimed()
	if len(errs) != 1 || errs[0].Message != errorLogPrefix+"sockets: used 1\n" {
		t.Errorf("error logs = %v, want one with the sockstat", errs)
	}
}

// TestProxyClientCancel cancels a request while the backend holds it: the
// proxy must log at debug and not treat it as an upstream failure.
func TestProxyClientCancel(t *testing.T) {
	arrived := make(chan struct{})
	backend, _ := startServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}), false)
	logger, logs := observedLogger()
	handled := make(chan error, 1)
	rp := NewHeaderPruningReverseProxy(backend.Listener.Addr().String(), NoHostOverride, RevisionHeaders, false)
	rp.Transport = NewProxyTransport(0)
	eh := ErrorHandler(logger)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		eh(w, r, err)
		handled <- err
	}
	front, _ := startServer(t, rp, false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	clientErr := make(chan error, 1)
	client := newClient(t)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()

	recv(t, arrived)
	cancel()
	if err := recv(t, clientErr); !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	if err := recv(t, handled); !errors.Is(err, context.Canceled) {
		t.Errorf("proxy error = %v, want context.Canceled", err)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Errorf("got %d error logs, want 0", n)
	}
	if n := logs.FilterMessage("client canceled request").FilterLevelExact(zapcore.DebugLevel).Len(); n != 1 {
		t.Errorf("got %d debug 'client canceled request' logs, want 1", n)
	}
}
