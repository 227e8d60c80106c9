package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// sleepCtx waits for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleep waits ?ms=N milliseconds, or answers 503 if the request is cancelled
// first.
func (a *app) sleep(w http.ResponseWriter, r *http.Request) {
	ms, ok := queryInt(r, "ms", -1, 0, math.MaxInt64/int64(time.Millisecond))
	if !ok {
		badParam(w, "ms", "a non-negative integer")
		return
	}
	if err := a.opts.wait(r.Context(), time.Duration(ms)*time.Millisecond); err != nil {
		http.Error(w, "cancelled: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "slept %d ms\n", ms)
}

// stream writes ?n=N lines "chunk i\n" (i from 1), flushing each and waiting
// ?interval=D (default 100ms) between them.
func (a *app) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	a.emit(w, r, "chunk %d\n")
}

// sse is stream as server-sent events "data: i\n\n".
func (a *app) sse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	a.emit(w, r, "data: %d\n\n")
}

// emit writes format for i = 1..n as stream describes, stopping early when
// the client goes away.
func (a *app) emit(w http.ResponseWriter, r *http.Request, format string) {
	n, ok := queryInt(r, "n", 5, 0, math.MaxInt64)
	if !ok {
		badParam(w, "n", "a non-negative integer")
		return
	}
	interval, err := 100*time.Millisecond, error(nil)
	if v := r.URL.Query().Get("interval"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil || interval < 0 {
			badParam(w, "interval", "a non-negative Go duration")
			return
		}
	}
	rc := http.NewResponseController(w)
	for i := int64(1); i <= n; i++ {
		if i > 1 && a.opts.wait(r.Context(), interval) != nil {
			return
		}
		fmt.Fprintf(w, format, i)
		if rc.Flush() != nil {
			return
		}
	}
}

// upgrader accepts any origin: the demo sits behind proxies that may rewrite it.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// echoWebSocket echoes every message back, with its type, until the peer
// closes the connection.
func echoWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already replied with an error.
	}
	defer conn.Close()
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(kind, msg); err != nil {
			return
		}
	}
}
