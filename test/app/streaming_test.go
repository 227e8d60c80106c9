package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSleepCtx(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{name: "zero", ctx: context.Background(), d: 0, want: nil},
		{name: "short", ctx: context.Background(), d: time.Microsecond, want: nil},
		{name: "cancelled", ctx: cancelled, d: time.Hour, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := sleepCtx(tc.ctx, tc.d); !errors.Is(err, tc.want) {
				t.Errorf("sleepCtx = %v, want %v", err, tc.want)
			}
		})
	}
}

// trackDone wraps h and closes the returned channel once a request has been
// handled; use it for one request only.
func trackDone(h http.Handler) (http.Handler, <-chan struct{}) {
	done := make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}), done
}

func TestSleepHonoursCancellation(t *testing.T) {
	t.Run("client goes away", func(t *testing.T) {
		waiting := make(chan time.Duration, 1)
		h, done := trackDone(newMux(options{wait: func(ctx context.Context, d time.Duration) error {
			waiting <- d
			return sleepCtx(ctx, d)
		}}))
		ts := startServer(t, h)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/sleep?ms=3600000", nil)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			resp, err := ts.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		if d := await(t, waiting, "the handler to start sleeping"); d != time.Hour {
			t.Errorf("sleeping %v, want 1h", d)
		}
		cancel()
		await(t, done, "the handler to return after the client cancelled")
		if err := await(t, errc, "the client"); !errors.Is(err, context.Canceled) {
			t.Errorf("client error = %v, want context.Canceled", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		newMux(options{}).ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/sleep?ms=3600000", nil))
		if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "slept") {
			t.Errorf("got %d %q, want 503 without sleeping", rec.Code, rec.Body)
		}
	})
}

func TestStreamArrivesIncrementally(t *testing.T) {
	tests := []struct {
		path, first, rest string
	}{
		{path: "/stream?n=2", first: "chunk 1\n", rest: "chunk 2\n"},
		{path: "/sse?n=3", first: "data: 1\n\n", rest: "data: 2\n\ndata: 3\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			// The handler may write the next event only once the test has read
			// the previous one: a buffering handler would never send the first.
			release := make(chan struct{})
			ts := startServer(t, newMux(options{wait: func(ctx context.Context, _ time.Duration) error {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatalf("no response before the first event was released: %v", err)
			}
			defer resp.Body.Close()
			if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
				t.Errorf("Transfer-Encoding = %q, want chunked", resp.TransferEncoding)
			}
			first := make([]byte, len(tc.first))
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != tc.first {
				t.Fatalf("first event = %q (%v), want %q", first, err, tc.first)
			}
			close(release)
			if rest := readAll(t, resp); rest != tc.rest {
				t.Errorf("rest = %q, want %q", rest, tc.rest)
			}
		})
	}
}

func TestStreamStopsWhenClientGoes(t *testing.T) {
	var waits atomic.Int32
	h, done := trackDone(newMux(options{wait: func(ctx context.Context, _ time.Duration) error {
		waits.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}}))
	ts := startServer(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/stream?n=1000&interval=1h", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("chunk 1\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "chunk 1\n" {
		t.Fatalf("first line = %q (%v)", first, err)
	}
	cancel()
	await(t, done, "the stream handler to return after the client went away")
	if n := waits.Load(); n != 1 {
		t.Errorf("handler waited %d times, want 1: it went on after the client left", n)
	}
}

func TestWebSocketEcho(t *testing.T) {
	ts := startServer(t, newMux(options{}))
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("handshake status = %d", resp.StatusCode)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // bounds a broken test
	tests := []struct {
		kind int
		data []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
		{websocket.TextMessage, []byte{}},
		{websocket.BinaryMessage, bytes.Repeat([]byte("x"), 100_000)},
	}
	for i, tc := range tests {
		if err := conn.WriteMessage(tc.kind, tc.data); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		kind, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: read: %v", i, err)
		}
		if kind != tc.kind || !bytes.Equal(data, tc.data) {
			t.Errorf("message %d: echoed type %d, %d bytes; want type %d, %d bytes", i, kind, len(data), tc.kind, len(tc.data))
		}
	}
	bye := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := conn.WriteMessage(websocket.CloseMessage, bye); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after close: %v, want a normal close from the server", err)
	}
}
