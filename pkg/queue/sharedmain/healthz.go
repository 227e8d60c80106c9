package sharedmain

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// healthzPath is the admin port's liveness endpoint: the proxy's own
// liveness, apart from the user container's readiness (the main port's
// probes).
const healthzPath = "/healthz"

// acceptCheckTimeout bounds how long /healthz waits for the main server to
// accept the connection it opened to itself.
const acceptCheckTimeout = time.Second

// healthz answers /healthz, in the manner of kube-proxy's healthz server:
// 200 while the proxy's own machinery is alive, 503 when it is stale, both
// with the body
//
//	{"lastUpdated": "<RFC 3339>", "currentTime": "<RFC 3339>", "status": "ok"|"stale"|"draining", "reason": "..."}
//
// where lastUpdated is the last run of the stats ticker. Alive means all of:
//
//   - the stats ticker (the autoscaler's once-a-second report) ran within
//     twice its period;
//   - the main server's accept loop runs: it accepted a connection within
//     twice the period, or, when none came, it accepts one that /healthz
//     opens to it within acceptCheckTimeout;
//   - the drain state answers (Draining does not block).
//
// While the proxy drains (after /wait-for-drain or SIGTERM), /healthz
// answers 200 with status "draining" and checks no more: a liveness probe
// must not restart a container that is shutting down as asked, and the main
// listener closes at the end of the drain. It answers every method alike.
type healthz struct {
	clock    clock.PassiveClock
	period   time.Duration // the stats ticker's
	draining func() bool
	// accepts is the main listener's, set once it is open; nil before
	// (the check then fails: the proxy is not serving yet).
	accepts atomic.Pointer[acceptTracker]
	timeout time.Duration // acceptCheckTimeout; tests shorten it

	lastTick atomic.Int64 // UnixNano of the last stats tick (start: the process's start)
	checkMu  sync.Mutex   // one self-connection at a time
}

func newHealthz(clk clock.PassiveClock, period time.Duration, draining func() bool) *healthz {
	h := &healthz{clock: clk, period: period, draining: draining, timeout: acceptCheckTimeout}
	h.ticked(clk.Now())
	return h
}

// ticked records a run of the stats ticker.
func (h *healthz) ticked(now time.Time) { h.lastTick.Store(now.UnixNano()) }

// healthzBody is /healthz's answer.
type healthzBody struct {
	LastUpdated time.Time `json:"lastUpdated"`
	CurrentTime time.Time `json:"currentTime"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
}

func (h *healthz) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.clock.Now()
	body := healthzBody{LastUpdated: time.Unix(0, h.lastTick.Load()).UTC(), CurrentTime: now.UTC(), Status: "ok"}
	switch {
	case h.draining():
		body.Status = "draining"
	default:
		if reason := h.stale(r.Context(), now, body.LastUpdated); reason != "" {
			body.Status, body.Reason = "stale", reason
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if body.Status == "stale" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// stale returns why the machinery is not alive, or "".
func (h *healthz) stale(ctx context.Context, now, lastTick time.Time) string {
	if now.Sub(lastTick) > 2*h.period {
		return "the stats ticker has not run for " + now.Sub(lastTick).Round(time.Millisecond).String()
	}
	t := h.accepts.Load()
	if t == nil {
		return "the main server is not listening yet"
	}
	if now.Sub(time.Unix(0, t.last.Load())) <= 2*h.period {
		return ""
	}
	h.checkMu.Lock()
	defer h.checkMu.Unlock()
	if err := t.check(ctx, h.timeout); err != nil {
		return "the main server does not accept connections: " + err.Error()
	}
	return ""
}

// acceptTracker wraps the main listener to tell /healthz when its accept
// loop last returned a connection. Its cost per accepted connection is a
// clock read, an atomic store and a non-blocking channel send.
type acceptTracker struct {
	net.Listener
	clock    clock.PassiveClock
	last     atomic.Int64  // UnixNano of the last accepted connection
	accepted chan struct{} // buffered 1: an accept since it was drained
}

func newAcceptTracker(ln net.Listener, clk clock.PassiveClock) *acceptTracker {
	return &acceptTracker{Listener: ln, clock: clk, accepted: make(chan struct{}, 1)}
}

// Accept implements net.Listener.
func (t *acceptTracker) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err == nil {
		t.last.Store(t.clock.Now().UnixNano())
		select {
		case t.accepted <- struct{}{}:
		default:
		}
	}
	return c, err
}

// check connects to the listener and waits up to timeout for the accept
// loop to take a connection (this one or any other).
func (t *acceptTracker) check(ctx context.Context, timeout time.Duration) error {
	select {
	case <-t.accepted: // an old signal: not proof of a live loop now
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", loopbackAddr(t.Addr()))
	if err != nil {
		return err
	}
	defer c.Close()
	select {
	case <-t.accepted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loopbackAddr is addr with an unspecified host replaced by 127.0.0.1, so
// that a listener on ":port" (dual-stack on Linux, or IPv4) is dialled on
// this host, also where IPv6 is off.
func loopbackAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP != nil && !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tcp.Port}).String()
}

// trackAccepts wraps the main listener of s in an acceptTracker for h.
func (s serverSet) trackAccepts(h *healthz, clk clock.PassiveClock) {
	for i := range s {
		if s[i].name == serverMain {
			t := newAcceptTracker(s[i].ln, clk)
			s[i].ln = t
			h.accepts.Store(t)
		}
	}
}
