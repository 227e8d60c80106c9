// Package bgread spares an HTTP/1.1 server one read system call per
// request: the background read that net/http starts on a connection while
// a request is served, to notice a client that goes away or pipelines its
// next request, is deferred by a short delay. A request answered within
// the delay (most requests to a user container on loopback) never makes
// it: net/http aborts the read when the response is done, and the wrapper
// answers that abort without touching the socket. A request that takes
// longer gets the real read, late by the delay, so a client that goes
// away still cancels the request's context, the delay later than with
// plain net/http.
//
// The deferral applies only where net/http is known to be serving
// HTTP/1.x requests: from the first request on (http.StateActive) until
// the connection is hijacked (websockets, the h2c upgrade), and never on a
// connection whose first bytes may be HTTP/2's preface (h2c by prior
// knowledge: net/http's HTTP/2 server reports its streams through the same
// hook, and reads frames of any size). Within HTTP/1.x serving, net/http reads
// the socket through a buffer of at least 4 KiB; a read of one byte is its
// background read (or, at worst, the last byte allowed of a request head
// at the 1 MiB limit, which is then read the delay later).
//
// Read deadlines are applied lazily while net/http serves HTTP/1.x: it sets
// one four or five times per request (header timeout, its end, the abort
// and its reset, the idle wait), and each is a runtime timer update. The
// wrapper keeps the last one set and gives it to the socket before the
// next socket read, or at once while a read is at the socket; so a request
// whose head was already buffered costs none. A deadline set on a closed
// connection then reports no error (the next read does).
//
// Everything else the connection does is *net.TCPConn's: its ReadFrom and
// WriteTo (sendfile, splice), CloseWrite and write deadlines. Once the
// connection is hijacked or speaks HTTP/2, deadlines go to the socket at
// once, so that the socket's own reads (WriteTo) honour them.
package bgread

import (
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Configure makes srv defer the background read by delay on the TCP
// connections of ln, and returns the listener to serve. It chains srv's
// ConnState hook, which must be set before.
func Configure(srv *http.Server, ln net.Listener, delay time.Duration) net.Listener {
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if dc, ok := c.(*conn); ok {
			switch s {
			case http.StateActive:
				dc.state.CompareAndSwap(stateNew, stateArmed)
			case http.StateHijacked, http.StateClosed:
				dc.turnOff()
			}
		}
		if next != nil {
			next(c, s)
		}
	}
	return listener{Listener: ln, delay: delay}
}

type listener struct {
	net.Listener
	delay time.Duration
	hooks *testHooks // nil but in tests
}

// testHooks are called, in tests, when a deferred read reads the socket
// (with the count read) and when a read deadline goes to the socket.
type testHooks struct {
	socketRead    func(n int)
	applyDeadline func()
}

// Accept wraps TCP connections; others are returned as they are.
func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &conn{TCPConn: tc, delay: l.delay, abort: make(chan struct{}, 1), hooks: l.hooks}, nil
}

// errAborted is what a deferred read returns when a read deadline in the
// past ends it: a timeout, as the socket's read would have returned (the
// server ignores it after its own abort).
var errAborted = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// conn is an accepted connection whose one-byte reads may be deferred.
type conn struct {
	*net.TCPConn
	delay time.Duration
	state atomic.Int32 // stateNew, stateArmed or stateOff
	read  bool         // a read returned bytes (for the preface check)
	hooks *testHooks   // nil but in tests

	mu      sync.Mutex
	past    bool          // the read deadline is set before the process started
	waiting bool          // a deferred read waits on abort
	abort   chan struct{} // buffered 1; sent to only while waiting

	// The read deadline last set, and the one the socket has: they differ
	// until the next socket read. atSocket counts reads in the socket.
	deadline, applied time.Time
	atSocket          int

	timer *time.Timer // used by the one deferred read at a time
}

// conn states.
const (
	stateNew   = iota // no request served yet
	stateArmed        // serving HTTP/1.x: one-byte reads are deferred
	stateOff          // hijacked, HTTP/2 or closed: never deferred
)

// h2Preface is the start of HTTP/2's connection preface.
const h2Preface = "PRI *"

// Read reads from the socket, after the delay for a one-byte read while
// armed: a read deadline set in the past meanwhile ends it at once, with
// a timeout and without a system call. (A deadline already past when the
// read starts ends it at once if it is older than the process, as
// net/http's abort is; a more recent one ends it after the delay, at the
// socket.)
func (c *conn) Read(p []byte) (int, error) {
	state := c.state.Load()
	if state == stateOff {
		return c.TCPConn.Read(p)
	}
	if len(p) != 1 || state != stateArmed {
		n, err := c.socketRead(p)
		if !c.read && n > 0 {
			// Reads are serialised by the server (and HTTP/2's reader),
			// so the first is seen by one goroutine.
			c.read = true
			if m := min(n, len(h2Preface)); string(p[:m]) == h2Preface[:m] {
				c.turnOff()
			}
		}
		return n, err
	}
	c.mu.Lock()
	if c.past {
		c.mu.Unlock()
		return 0, errAborted
	}
	c.waiting = true
	c.mu.Unlock()

	if c.timer == nil {
		c.timer = time.NewTimer(c.delay)
	} else {
		c.timer.Reset(c.delay)
	}
	aborted := false
	select {
	case <-c.abort:
		aborted = true
		c.timer.Stop()
	case <-c.timer.C:
	}

	c.mu.Lock()
	c.waiting = false
	select {
	case <-c.abort: // sent after the timer fired: the socket read sees the deadline
	default:
	}
	c.mu.Unlock()
	if aborted {
		return 0, errAborted
	}
	n, err := c.socketRead(p)
	if c.hooks != nil && c.hooks.socketRead != nil {
		c.hooks.socketRead(n)
	}
	return n, err
}

// socketRead reads the socket, after giving it the read deadline last set.
func (c *conn) socketRead(p []byte) (int, error) {
	c.mu.Lock()
	c.applyLocked()
	c.atSocket++
	c.mu.Unlock()
	n, err := c.TCPConn.Read(p)
	c.mu.Lock()
	c.atSocket--
	c.mu.Unlock()
	return n, err
}

// applyLocked gives the socket the read deadline last set, if it has
// another one; c.mu is held.
func (c *conn) applyLocked() error {
	if c.deadline.Equal(c.applied) {
		return nil
	}
	if c.hooks != nil && c.hooks.applyDeadline != nil {
		c.hooks.applyDeadline()
	}
	c.applied = c.deadline
	return c.TCPConn.SetReadDeadline(c.deadline)
}

// turnOff stops deferring reads and deadlines for good.
func (c *conn) turnOff() {
	c.mu.Lock()
	c.state.Store(stateOff)
	c.applyLocked()
	c.mu.Unlock()
}

// SetReadDeadline sets the read deadline, for the next socket read or at
// once (see the package comment), and ends a deferred read if t has
// passed.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// net/http aborts with a deadline long past; reading the clock only
	// when a deferred read waits keeps it off the path of every request.
	c.past = !t.IsZero() && t.Before(processStart)
	if c.waiting && !t.IsZero() && (c.past || t.Before(time.Now())) {
		select {
		case c.abort <- struct{}{}:
		default:
		}
	}
	c.deadline = t
	if c.atSocket > 0 || c.state.Load() == stateOff {
		return c.applyLocked()
	}
	return nil
}

// SetDeadline sets both deadlines, the read one as SetReadDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.TCPConn.SetWriteDeadline(t)
}

// processStart bounds the deadlines known to have passed without reading
// the clock.
var processStart = time.Now()
