// Package h1server serves plain HTTP/1.1 requests on a listener with less
// work per request than net/http's server, and hands every other
// connection to a net/http server, which serves it as it would have.
//
// The fast path takes a request whose head fits its 4 KiB buffer and is
// HTTP/1.1 with one of GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS, an
// origin-form target, exactly one valid Host, at most one Content-Length,
// and none of Transfer-Encoding, Trailer, Expect, Upgrade, HTTP2-Settings
// or Pragma. Anything else, valid or not (HTTP/1.0, chunked request
// bodies, 100-continue, websockets, h2c by upgrade or by prior knowledge,
// absolute-form targets, malformed heads), sends the connection, with the
// bytes already read, to the generic server for the rest of its life.
// Parsing is line by line, so a bad line goes to the generic server as
// soon as it is complete, to be answered at once as net/http would.
//
// For the requests it takes, the fast path does what net/http's server
// does, with the same wire bytes: the *http.Request the handler sees (URL,
// header map with canonical keys and without Host, Host, Close,
// ContentLength, RemoteAddr, RequestURI, context with
// http.ServerContextKey and http.LocalAddrContextKey), the response (see response),
// body semantics, Hijack, http.ResponseController's deadlines and full
// duplex, CloseNotify, panics (logged, connection closed), keep-alive,
// ReadHeaderTimeout, and Shutdown (idle connections closed, active ones
// finished, a request read during shutdown dropped).
//
// One difference: a request's context is its connection's, cancelled when
// the client goes away (or a write to it fails), as net/http's, but not
// when the handler returns: that would cost a context, its channel and
// its children's map per request. A handler whose goroutines must end with
// it derives its own context and cancels it (queue-proxy's timeout layer
// does, for everything below it).
//
// What it saves: net/http's per-request goroutine and background read
// (here one timer, started when the body is read and stopped when the
// response is done: a request answered within BackgroundReadDelay reads
// nothing in the background), its textproto reader, and per-request
// read-deadline updates.
package h1server

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a fast-path HTTP/1.1 server with a generic fallback.
type Server struct {
	// Handler serves the fast path's requests (the generic server has its
	// own, normally the same).
	Handler http.Handler
	// Generic serves the connections the fast path does not; its ErrorLog
	// is used for the fast path's messages too.
	Generic *http.Server
	// ReadHeaderTimeout bounds reading a request head, from its first
	// bytes (and the first request's wait for them), as net/http's.
	ReadHeaderTimeout time.Duration
	// BackgroundReadDelay is how long after a request's body is read the
	// connection is read in the background, to notice a client gone away.
	BackgroundReadDelay time.Duration

	baseCtx      context.Context
	shuttingDown atomic.Bool
	mu           sync.Mutex
	ln           net.Listener
	conns        map[*conn]struct{}
	handoff      *chanListener
}

// Serve accepts connections on ln until it fails or the server shuts down;
// it returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("h1server: Serve called twice")
	}
	s.ln = ln
	s.conns = make(map[*conn]struct{})
	s.handoff = newChanListener(ln.Addr())
	s.baseCtx = context.WithValue(context.Background(), http.ServerContextKey, s.Generic)
	s.mu.Unlock()
	// It returns when Shutdown or Close closes its listener.
	go s.Generic.Serve(s.handoff)

	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(rwc)
		if !s.track(c) {
			rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handOff gives c to the generic server; false if it is shut down.
func (s *Server) handOff(c *conn) bool {
	c.endRequest()
	c.state.Store(stateGone)
	return s.handoff.deliver(&replayConn{Conn: c.rwc, r: c.br})
}

// Shutdown stops accepting, closes idle connections, and waits for the
// active ones (and the generic server's) to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shuttingDown.Store(true)
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return s.Generic.Shutdown(ctx)
	}
	lnErr := ln.Close()
	genericErr := make(chan error, 1)
	go func() { genericErr <- s.Generic.Shutdown(ctx) }()

	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 500*time.Millisecond)
			t.Reset(wait)
		}
	}
	if err := <-genericErr; err != nil {
		return err
	}
	return lnErr
}

// closeIdle closes the idle connections (and new ones silent for 5 s) and
// reports whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateGone) ||
			(time.Since(c.accepted) > 5*time.Second && c.state.CompareAndSwap(stateNew, stateGone)) {
			c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.shuttingDown.Store(true)
	s.mu.Lock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	if e := s.Generic.Close(); err == nil {
		err = e
	}
	return err
}

func (s *Server) logf(format string, args ...any) {
	if l := s.Generic.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}
