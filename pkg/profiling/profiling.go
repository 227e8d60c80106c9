// Package profiling serves the Go runtime's profiles at /debug/pprof/, the
// endpoints of net/http/pprof that Knative's queue-proxy exposes on its
// profiling port (CONTRACT.md §2): the index and named profiles, cmdline,
// profile (CPU), symbol and trace, GET only (other methods get 405).
//
// It is written on runtime/pprof and runtime/trace directly because
// net/http/pprof costs every pod 0.15 MB of binary and resident memory
// more (measured in the stripped binary), mostly its protobuf profile parser, which only serves delta
// profiles (`?seconds=N` on a named profile such as heap). Those are not
// offered: such a request gets 400 and a hint (fetch twice and compare
// with `go tool pprof -diff_base`). CPU profiles and traces take seconds as
// usual.
package profiling

import (
	"bufio"
	"fmt"
	"html"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix is where the handlers are served.
const Prefix = "/debug/pprof/"

// Defaults of net/http/pprof for the seconds parameter.
const (
	defaultCPUSeconds   = 30
	defaultTraceSeconds = 1
)

// Handler returns the /debug/pprof/ routes, GET only.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix, named)
	mux.HandleFunc("GET "+Prefix+"cmdline", cmdline)
	mux.HandleFunc("GET "+Prefix+"profile", cpuProfile)
	mux.HandleFunc("GET "+Prefix+"symbol", symbol)
	mux.HandleFunc("GET "+Prefix+"trace", traceProfile)
	return mux
}

// named serves the index at Prefix and a named profile below it, with
// net/http/pprof's parameters: debug=N selects the text format (0 is the
// gzipped protobuf), gc=1 collects garbage before a heap profile.
func named(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	if name == "" {
		index(w)
		return
	}
	p := pprof.Lookup(name)
	if p == nil {
		httpError(w, http.StatusNotFound, "Unknown profile")
		return
	}
	q := r.URL.Query()
	if q.Get("seconds") != "" {
		httpError(w, http.StatusBadRequest, "delta profiles (seconds=) are not served here; fetch "+name+" twice and compare with `go tool pprof -diff_base`")
		return
	}
	debug, _ := strconv.Atoi(q.Get("debug"))
	if gc, _ := strconv.Atoi(q.Get("gc")); gc > 0 && name == "heap" {
		runtime.GC()
	}
	setHeaders(w, name, debug)
	p.WriteTo(w, debug) //nolint:errcheck // the client went away; nothing to report to
}

// cmdline writes the command line, arguments separated by NUL bytes.
func cmdline(w http.ResponseWriter, _ *http.Request) {
	setHeaders(w, "", 1)
	fmt.Fprint(w, strings.Join(os.Args, "\x00"))
}

// cpuProfile writes a CPU profile of `seconds` (default 30) seconds.
func cpuProfile(w http.ResponseWriter, r *http.Request) {
	d, ok := seconds(w, r, defaultCPUSeconds)
	if !ok {
		return
	}
	setHeaders(w, "profile", 0)
	if err := pprof.StartCPUProfile(w); err != nil {
		w.Header().Del("Content-Disposition")
		httpError(w, http.StatusInternalServerError, "Could not enable CPU profiling: "+err.Error())
		return
	}
	wait(r, d)
	pprof.StopCPUProfile()
}

// traceProfile writes an execution trace of `seconds` (default 1) seconds.
func traceProfile(w http.ResponseWriter, r *http.Request) {
	d, ok := seconds(w, r, defaultTraceSeconds)
	if !ok {
		return
	}
	setHeaders(w, "trace", 0)
	if err := trace.Start(w); err != nil {
		w.Header().Del("Content-Disposition")
		httpError(w, http.StatusInternalServerError, "Could not enable tracing: "+err.Error())
		return
	}
	wait(r, d)
	trace.Stop()
}

// symbol maps program counters in the query ("0x4a2c1f+0x4a2d00") to
// function names, one "0x<pc> <name>" line each, after "num_symbols: 1"
// (which tells pprof that symbols are available).
func symbol(w http.ResponseWriter, r *http.Request) {
	setHeaders(w, "", 1)
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "num_symbols: 1\n")
	for word := range strings.SplitSeq(r.URL.RawQuery, "+") {
		pc, err := strconv.ParseUint(word, 0, 64)
		if err != nil || pc == 0 {
			continue
		}
		if f := runtime.FuncForPC(uintptr(pc)); f != nil {
			fmt.Fprintf(bw, "%#x %s\n", pc, f.Name())
		}
	}
	bw.Flush() //nolint:errcheck // the client went away; nothing to report to
}

// index lists the named profiles with their counts, and the other routes.
func index(w http.ResponseWriter) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	profiles := pprof.Profiles()
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name() < profiles[j].Name() })
	bw := bufio.NewWriter(w)
	fmt.Fprint(bw, "<html><head><title>/debug/pprof/</title></head><body>\n<p>Profiles:</p>\n<table>\n")
	for _, p := range profiles {
		n := html.EscapeString(p.Name())
		fmt.Fprintf(bw, "<tr><td>%d</td><td><a href='%s?debug=1'>%s</a></td></tr>\n", p.Count(), n, n)
	}
	fmt.Fprint(bw, "<tr><td></td><td><a href='cmdline'>cmdline</a></td></tr>\n")
	fmt.Fprint(bw, "<tr><td></td><td><a href='profile'>profile</a> (CPU, ?seconds=30)</td></tr>\n")
	fmt.Fprint(bw, "<tr><td></td><td><a href='symbol'>symbol</a></td></tr>\n")
	fmt.Fprint(bw, "<tr><td></td><td><a href='trace?seconds=1'>trace</a></td></tr>\n")
	fmt.Fprint(bw, "</table>\n<p><a href='goroutine?debug=2'>full goroutine stack dump</a></p>\n</body></html>\n")
	bw.Flush() //nolint:errcheck // as above
}

// seconds reads the seconds parameter (a positive number, default def);
// on a bad value it answers 400 and returns false.
func seconds(w http.ResponseWriter, r *http.Request, def float64) (time.Duration, bool) {
	s := r.URL.Query().Get("seconds")
	if s == "" {
		return time.Duration(def * float64(time.Second)), true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v > 24*3600 {
		httpError(w, http.StatusBadRequest, "bad seconds "+strconv.Quote(s)+": want a positive number of seconds, at most a day")
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

// wait returns after d or when the client goes away.
func wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// setHeaders marks a response: text for debug > 0, else a binary
// attachment named after the profile.
func setHeaders(w http.ResponseWriter, name string, debug int) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if debug > 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("X-Go-Pprof", "1")
	http.Error(w, msg, code)
}
