package handler

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
	"knative.dev/networking/pkg/http/header"
)

// DefaultQuietPeriod is the quiet period a Drainer uses when its QuietPeriod
// is not positive (Knative's DefaultDrainTimeout).
const DefaultQuietPeriod = 45 * time.Second

// kubeProbeUAPrefix is the User-Agent prefix of kubelet probes
// ("kube-probe/<major>.<minor>").
const kubeProbeUAPrefix = header.KubeProbeUAPrefix

// Drainer answers health checks and network probes itself and passes every
// other request to Inner; Drain() blocks until QuietPeriod passes without
// non-probe traffic.
//
// Every request is classified, in this order and regardless of path and
// method:
//
//   - A health check: the User-Agent starts with "kube-probe/" or with one of
//     HealthCheckUAPrefixes (the K-Kubelet-Probe header does not count). While
//     draining it gets 503 "shutting down\n"; otherwise HealthCheck answers
//     it (a nil HealthCheck answers 200 with an empty body).
//   - A network probe: the first K-Network-Probe value is exactly "probe".
//     While draining it gets 503 "shutting down\n"; otherwise an empty
//     K-Network-Hash gets 400 and a non-empty one gets 200 with the hash
//     echoed in the K-Network-Hash response header and an empty body.
//   - Anything else goes to Inner, also while draining; while draining it
//     restarts the quiet period.
//
// Error bodies are written with http.Error (text/plain; charset=utf-8,
// X-Content-Type-Options: nosniff, trailing newline).
//
// Draining starts with the first Drain call and lasts, also after the quiet
// period has passed, until Reset. A Drainer must not be copied after first
// use. Inner must not be nil.
type Drainer struct {
	// Inner serves every request that is neither a health check nor a
	// network probe.
	Inner http.Handler

	// HealthCheck answers health-check requests while not draining.
	HealthCheck http.Handler

	// HealthCheckUAPrefixes are User-Agent prefixes, besides "kube-probe/",
	// that mark a request as a health check.
	HealthCheckUAPrefixes []string

	// QuietPeriod is how long Drain waits without non-probe traffic.
	// Values <= 0 mean DefaultQuietPeriod.
	QuietPeriod time.Duration

	// Clock measures the quiet period; nil means the real clock.
	Clock clock.Clock

	// state is non-nil while draining. It is the only thing the request
	// path reads, so that a Drainer that is not draining costs one atomic
	// load per request.
	state atomic.Pointer[drainState]

	// mu serialises starting, finishing and resetting drains.
	mu sync.Mutex
}

// drainState is one drain, from the first Drain call to Reset.
type drainState struct {
	clock clock.Clock
	start time.Time // clock time when the drain started

	// last is the time since start, in nanoseconds, of the latest
	// non-probe request seen while draining; 0 means none.
	last atomic.Int64

	// done is closed, under Drainer.mu, when the quiet period has passed
	// or the drain was reset; closed records that.
	done   chan struct{}
	closed bool

	// callers counts the Drain calls that have joined this drain.
	callers atomic.Int32
}

// touch records a non-probe request at the current time.
func (s *drainState) touch() {
	now := int64(s.clock.Since(s.start))
	for {
		old := s.last.Load()
		if now <= old || s.last.CompareAndSwap(old, now) {
			return
		}
	}
}

// idle returns how long it has been since the latest non-probe request,
// or since the drain started if there was none.
func (s *drainState) idle() time.Duration {
	return s.clock.Since(s.start) - time.Duration(s.last.Load())
}

// ServeHTTP implements http.Handler.
func (d *Drainer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.isHealthCheck(r) {
		if d.state.Load() != nil {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if d.HealthCheck == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		d.HealthCheck.ServeHTTP(w, r)
		return
	}

	if v := r.Header[header.ProbeKey]; len(v) != 0 && v[0] == header.ProbeValue {
		d.serveNetworkProbe(w, r)
		return
	}

	if s := d.state.Load(); s != nil {
		s.touch()
	}
	d.Inner.ServeHTTP(w, r)
}

// isHealthCheck reports whether the User-Agent marks r as a health check.
func (d *Drainer) isHealthCheck(r *http.Request) bool {
	v := r.Header[header.UserAgentKey]
	if len(v) == 0 || v[0] == "" {
		return false
	}
	ua := v[0]
	if strings.HasPrefix(ua, kubeProbeUAPrefix) {
		return true
	}
	for _, p := range d.HealthCheckUAPrefixes {
		if strings.HasPrefix(ua, p) {
			return true
		}
	}
	return false
}

// serveNetworkProbe answers a "K-Network-Probe: probe" request.
func (d *Drainer) serveNetworkProbe(w http.ResponseWriter, r *http.Request) {
	if d.state.Load() != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	hash := r.Header.Get(header.HashKey)
	if hash == "" {
		http.Error(w, `a probe request must contain a non-empty "K-Network-Hash" header`, http.StatusBadRequest)
		return
	}
	w.Header().Set(header.HashKey, hash)
	w.WriteHeader(http.StatusOK)
}

// Draining reports whether a drain is in progress or has completed without
// a Reset since.
func (d *Drainer) Draining() bool {
	return d.state.Load() != nil
}

// Drain starts draining, if not already, and blocks until QuietPeriod has
// passed without non-probe requests or until Reset. Any number of
// goroutines may call it; the first call starts the quiet period and all
// return together. Once a drain has completed, further calls return at once
// until Reset; a Drain after Reset starts a new drain.
func (d *Drainer) Drain() {
	d.mu.Lock()
	if s := d.state.Load(); s != nil {
		s.callers.Add(1)
		d.mu.Unlock()
		<-s.done
		return
	}
	clk := d.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	quiet := d.QuietPeriod
	if quiet <= 0 {
		quiet = DefaultQuietPeriod
	}
	s := &drainState{clock: clk, start: clk.Now(), done: make(chan struct{})}
	s.callers.Add(1)
	d.state.Store(s)
	d.mu.Unlock()

	// The first caller keeps the quiet timer. Requests only record their
	// time; when the timer fires it is re-armed for whatever is left of the
	// quiet period after the latest request.
	t := clk.NewTimer(quiet)
	defer t.Stop()
	for {
		select {
		case <-s.done: // Reset
			return
		case <-t.C():
			idle := s.idle()
			if idle >= quiet {
				d.finish(s)
				return
			}
			t.Reset(quiet - idle)
		}
	}
}

// finish releases the callers waiting on s.
func (d *Drainer) finish(s *drainState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// Reset cancels a drain: it stops the quiet timer, releases every Drain
// caller and makes health checks and network probes healthy again. It does
// nothing when not draining.
func (d *Drainer) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.state.Swap(nil); s != nil && !s.closed {
		s.closed = true
		close(s.done)
	}
}
