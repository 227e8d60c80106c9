package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// options configure the handlers. The hooks exist so tests control time and
// process exit; newMux fills the nil ones with the real thing.
type options struct {
	readyDelay  time.Duration                              // /healthz fails until this has passed
	enableCrash bool                                       // /crash exits only when set, else 404
	now         func() time.Time                           // clock for readyDelay
	wait        func(context.Context, time.Duration) error // pause of /sleep, /stream, /sse
	exit        func(code int)                             // called by /crash after replying
}

// app holds the state shared by the handlers.
type app struct {
	opts    options
	readyAt time.Time            // when /healthz starts to succeed
	forced  atomic.Pointer[bool] // set by /admin/ready; wins over readyAt
}

// newMux returns the demo endpoints. Any path not listed gets the greeting.
func newMux(opts options) *http.ServeMux {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.wait == nil {
		opts.wait = sleepCtx
	}
	if opts.exit == nil {
		opts.exit = os.Exit
	}
	a := &app{opts: opts, readyAt: opts.now().Add(opts.readyDelay)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", hello)
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/admin/ready", a.setReady)
	mux.HandleFunc("/headers", headers)
	mux.HandleFunc("/sleep", a.sleep)
	mux.HandleFunc("/stream", a.stream)
	mux.HandleFunc("/sse", a.sse)
	mux.HandleFunc("/ws", echoWebSocket)
	mux.HandleFunc("/upload", upload)
	mux.HandleFunc("/download", download)
	mux.HandleFunc("/status", status)
	mux.HandleFunc("/crash", a.crash)
	return mux
}

// hello greets and says what arrived, for curl demos.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello from the demo user container!\nprotocol: %s\nmethod: %s\nhost: %s\npath: %s\n",
		r.Proto, r.Method, r.Host, r.URL.Path)
}

// ready reports the readiness forced through /admin/ready if any, else
// whether readyAt has passed.
func (a *app) ready() bool {
	if f := a.forced.Load(); f != nil {
		return *f
	}
	return !a.opts.now().Before(a.readyAt)
}

// healthz answers 200 "ok" when ready and 503 otherwise.
func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok")
}

// setReady handles POST /admin/ready?value=true|false.
func (a *app) setReady(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	v, err := strconv.ParseBool(r.URL.Query().Get("value"))
	if err != nil {
		http.Error(w, "value must be true or false", http.StatusBadRequest)
		return
	}
	a.forced.Store(&v)
	fmt.Fprintf(w, "ready %t\n", v)
}

// headers describes the request as received, as a JSON object with the keys
// method, host, proto, path, raw_query, request_uri, remote_addr and headers.
func headers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{
		"method": r.Method, "host": r.Host, "proto": r.Proto, "path": r.URL.Path,
		"raw_query": r.URL.RawQuery, "request_uri": r.RequestURI, "remote_addr": r.RemoteAddr,
		"headers": r.Header,
	})
}

// writeJSON replies with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// queryInt reads query parameter name as an integer, def when absent, and
// reports whether it lies in [lo, hi]. A required parameter uses def < lo.
func queryInt(r *http.Request, name string, def, lo, hi int64) (int64, bool) {
	n, err := def, error(nil)
	if v := r.URL.Query().Get(name); v != "" {
		n, err = strconv.ParseInt(v, 10, 64)
	}
	return n, err == nil && n >= lo && n <= hi
}

// badParam answers 400 for an invalid or missing query parameter.
func badParam(w http.ResponseWriter, name, want string) {
	http.Error(w, fmt.Sprintf("query parameter %q must be %s", name, want), http.StatusBadRequest)
}

// upload consumes the body and replies with its length and SHA-256.
func upload(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
}

// downloadPattern is repeated to form the body of /download.
const downloadPattern = "0123456789abcdefghijklmnopqrstuvwxyz\n"

// patternReader endlessly yields downloadPattern.
type patternReader struct{ off int }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = downloadPattern[p.off]
		p.off = (p.off + 1) % len(downloadPattern)
	}
	return len(b), nil
}

// download writes ?bytes=N bytes of downloadPattern with Content-Length set.
func download(w http.ResponseWriter, r *http.Request) {
	n, ok := queryInt(r, "bytes", -1, 0, math.MaxInt64)
	if !ok {
		badParam(w, "bytes", "a non-negative integer")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	io.CopyN(w, &patternReader{}, n)
}

// status replies with the status ?code=N (200-599).
func status(w http.ResponseWriter, r *http.Request) {
	code, ok := queryInt(r, "code", -1, 200, 599)
	if !ok {
		badParam(w, "code", "an integer in 200-599")
		return
	}
	w.WriteHeader(int(code))
	fmt.Fprintf(w, "status %d\n", code)
}

// crash replies, then exits with status 2; a 404 unless enabled.
func (a *app) crash(w http.ResponseWriter, _ *http.Request) {
	if !a.opts.enableCrash {
		http.Error(w, "404 page not found (set ENABLE_CRASH=true)", http.StatusNotFound)
		return
	}
	w.Header().Set("Connection", "close")
	io.WriteString(w, "crashing\n")
	http.NewResponseController(w).Flush()
	a.opts.exit(2)
}
