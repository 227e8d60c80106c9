package goruntime

import "net/http"

// Instrument wraps the handler that serves the exposition as the Prometheus
// client's promhttp.Handler wraps its own: promhttp_metric_handler_requests_in_flight
// counts the requests inside h (so a scrape sees itself), and when h
// returns, promhttp_metric_handler_requests_total counts the request under
// its status code: the code last passed to WriteHeader (Write and Flush
// imply 200), 200 when h writes nothing, "unknown" outside 100-599. A request whose handler panics leaves the in-flight gauge but is
// not counted.
func (p *PromDefaults) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		p.serveInFlight(h, sw, r)
		switch c := sw.status; {
		case c == 0:
			p.codes[http.StatusOK].Add(1)
		case c >= 100 && c < len(p.codes):
			p.codes[c].Add(1)
		default:
			p.unknown.Add(1)
		}
	})
}

func (p *PromDefaults) serveInFlight(h http.Handler, w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	h.ServeHTTP(w, r)
}

// statusWriter records the status code written through it. It passes
// Flush on, and http.ResponseController reaches the rest through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.status, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wroteHeader {
			w.WriteHeader(http.StatusOK)
		}
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
