package upstream

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"
)

const (
	// DefaultMaxIdle is the idle limit when Pool.MaxIdle <= 0: the size of
	// today's idle pool when the container concurrency is unlimited.
	DefaultMaxIdle = 1000
	// DefaultIdleTimeout is the idle timeout when Pool.IdleTimeout <= 0, as
	// today's net/http Transport.
	DefaultIdleTimeout = 90 * time.Second

	// poolBufSize is the size of each connection's reader and writer, as
	// net/http's Transport uses.
	poolBufSize = 4 << 10
)

// Conn is a pooled upstream connection with its buffered reader and
// writer. The Conn is not allocated again when it is reused; its buffers
// are attached while it is in use (from Get or GetFresh until Put or
// Discard) and given back to shared pools while it is idle, so that the
// connections a burst leaves idle hold no buffers (8 KiB each); FlushAwait
// gives them back while it waits for a response too.
//
// A Conn belongs to one goroutine from Get (or GetFresh) until it is given
// back, exactly once, with Put or Discard.
type Conn struct {
	net.Conn
	R *bufio.Reader
	W *bufio.Writer

	idleSince time.Time // when it was last Put
	idle      bool      // in the pool; guarded by Pool.mu

	// The liveness probe (see alive). raw is nil when the connection has no
	// descriptor to probe; probe is c.probeFD, bound once.
	raw      syscall.RawConn
	probe    func(fd uintptr) bool
	probeErr error
	probeBuf [1]byte

	// FlushAwait's state (see writeAndAwait); await is c.awaitFD, bound
	// once.
	cw         connWriter // what W writes to
	await      func(fd uintptr) bool
	awaitReq   []byte
	awaitBuf   *[]byte // awaitReq's pooled buffer, until given back
	awaitN     int
	awaitErr   error
	awaitFirst bool
	testArmed  func() // tests only: FlushAwait wrote all and waits
}

// Pool keeps idle HTTP/1.1 connections to Addr and dials new ones. It is
// used synchronously by the goroutines serving requests: it starts no
// goroutine and no timer, and never limits the number of active
// connections, so Get never waits for another request.
//
// The fields must be set before the first use and not changed after; a
// Pool must not be copied after its first use.
//
// # Reuse
//
// Get hands out the most recently returned idle connection (LIFO), so that
// under a light load a few hot connections serve everything and the rest
// age out. A connection idle for more than IdleTimeout is closed, lazily:
// Get closes the expired connections it meets, and Put closes the oldest
// ones that have expired. Before handing out an idle connection Get checks,
// with one non-blocking read system call, that the peer has neither closed
// it nor sent anything on it (see alive); GetReplayable skips the check
// for a connection given back less than Unchecked ago.
//
// # Retrying
//
// The check cannot close the race in which the peer closes an idle
// connection just as a request is written on it. The caller may then retry
// the request, once, on a connection from GetFresh, when all of these hold
// (the rule of net/http's Transport, which the queue-proxy uses today):
//
//  1. the failed connection came from the pool (Get said reused); a fresh
//     connection that fails is a real error;
//  2. no byte of the response was read: writing the request failed, or the
//     first read of the response head failed (EOF, reset) before any byte
//     arrived; and the failure is not the request's context ending;
//  3. either nothing at all was written to the connection (its first Write
//     failed) and nothing of the request's body was read from the client,
//     or the request is replayable: it has no body (nil, http.NoBody, or
//     ContentLength 0) and its method is GET, HEAD, OPTIONS or TRACE, or
//     it has an Idempotency-Key or X-Idempotency-Key header.
//
// For "nothing written", net/http also requires an empty or rewindable
// body, and a proxied request's body cannot be rewound (its GetBody is nil):
// so, as net/http and Proxy do, a request with a body is never retried. In
// practice: retry body-less requests that are idempotent (or carry an
// idempotency key), and body-less others only when the very first write
// failed. The common stale case, a write that succeeds into the kernel and
// a first read that finds EOF or a reset, is thus retried for GET but not
// for POST, exactly as today.
type Pool struct {
	// Addr is the host:port dialed over "tcp".
	Addr string
	// Dial dials one connection; the production pool uses
	// pkghttp.NewBackoffDialer().DialContext. nil means a zero net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdle is the number of idle connections kept; <= 0 means
	// DefaultMaxIdle. Production sets the container concurrency when it is
	// limited, as today's Transport does.
	MaxIdle int
	// IdleTimeout is how long a connection may stay idle; <= 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Clock tells the time for the idle timeout; nil means the real clock.
	Clock clock.PassiveClock
	// Unchecked is how long after Put a connection is handed out by
	// GetReplayable without the liveness check; 0 means always check.
	// See GetReplayable.
	Unchecked time.Duration

	mu       sync.Mutex
	idle     []*Conn // oldest first
	draining bool    // set by CloseIdle, cleared by the next Get
}

// Get returns the most recently used idle connection that has not expired
// and is still open (reused is true), closing the expired or broken ones it
// meets on the way, or else a newly dialed one. ctx bounds only the dial,
// whose error is returned unchanged.
func (p *Pool) Get(ctx context.Context) (c *Conn, reused bool, err error) {
	return p.get(ctx, 0)
}

// GetReplayable is Get for a request that the retry rule lets the caller
// resend on a fresh connection (see Retrying): a connection given back
// less than Unchecked ago is handed out without the liveness check, which
// saves a system call on a busy connection.
//
// What the check would catch in that window is a peer that closed or
// wrote on the connection within Unchecked of a complete response it did
// not mark Connection: close: a close is then seen as EOF on the first
// read, before any response byte, and the request is retried; bytes it
// sent unasked are read as the response, as net/http's Transport reads
// them when they arrive after its read loop has handed the connection out.
// Put has already refused a connection with unread bytes.
func (p *Pool) GetReplayable(ctx context.Context) (c *Conn, reused bool, err error) {
	return p.get(ctx, p.Unchecked)
}

// get is Get, skipping the liveness check of connections idle for less
// than unchecked.
func (p *Pool) get(ctx context.Context, unchecked time.Duration) (c *Conn, reused bool, err error) {
	now := p.now()
	for {
		p.mu.Lock()
		p.draining = false
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		c.idle = false
		p.mu.Unlock()

		if !p.expired(c, now) && (now.Sub(c.idleSince) < unchecked || c.alive()) {
			c.attach()
			return c, true, nil
		}
		c.Conn.Close()
	}
	c, err = p.GetFresh(ctx)
	return c, false, err
}

// GetFresh dials a new connection, bypassing the idle ones: it is for the
// one retry of a request that failed on a reused connection. ctx bounds the
// dial, whose error is returned unchanged.
func (p *Pool) GetFresh(ctx context.Context) (*Conn, error) {
	var (
		nc  net.Conn
		err error
	)
	if p.Dial != nil {
		nc, err = p.Dial(ctx, "tcp", p.Addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", p.Addr)
	}
	if err != nil {
		return nil, err
	}
	return poolNewConn(nc), nil
}

// Put returns c for reuse. The caller promises that the last response was
// read to its end, that nothing (a Connection: close, an HTTP/1.0 response
// without keep-alive) said the connection must close, and that it has
// cleared any deadline it set on c. Put closes c instead when the pool is
// full, when CloseIdle was called since the last Get, or when c's buffers
// are not empty (unread response bytes, an unflushed request): its state is
// then in doubt. It panics if c is already idle.
func (p *Pool) Put(c *Conn) {
	if c.R.Buffered() > 0 || c.W.Buffered() > 0 {
		p.Discard(c)
		return
	}
	c.detach()
	now := p.now()
	c.idleSince = now

	p.mu.Lock()
	if c.idle {
		p.mu.Unlock()
		panic("upstream: Put of an idle connection")
	}
	stale := p.shiftExpiredLocked(now)
	keep := !p.draining && len(p.idle) < p.maxIdle()
	if keep {
		c.idle = true
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()

	if !keep {
		c.Conn.Close()
	}
	for stale != nil {
		stale.Conn.Close()
		p.mu.Lock()
		stale = p.shiftExpiredLocked(now)
		p.mu.Unlock()
	}
}

// Discard closes c, whose state is in doubt (an error, a response not read
// to its end, a response that said close). c must not be idle.
func (p *Pool) Discard(c *Conn) {
	c.Conn.Close()
	c.detach()
}

// Buffers of the connections in use, shared by every Pool.
var (
	poolReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, poolBufSize) }}
	poolWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, poolBufSize) }}
)

// attach gives c its buffers.
func (c *Conn) attach() {
	c.R = poolReaders.Get().(*bufio.Reader)
	c.R.Reset(c.Conn)
	c.W = poolWriters.Get().(*bufio.Writer)
	c.cw.c = c
	c.W.Reset(&c.cw)
}

// detach gives c's buffers back, emptied.
func (c *Conn) detach() {
	if c.R != nil {
		c.R.Reset(nil)
		poolReaders.Put(c.R)
		c.R = nil
	}
	if c.W != nil {
		c.W.Reset(nil)
		poolWriters.Put(c.W)
		c.W = nil
	}
}

// CloseIdle closes every idle connection, for shutdown and for callers of
// Transport.CloseIdleConnections. As net/http's Transport does, it also
// makes Put close the connections given back until the next Get, so that
// the requests in flight at shutdown do not refill the pool.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.draining = true
	for _, c := range idle {
		c.idle = false
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.Conn.Close()
	}
}

// shiftExpiredLocked removes and returns the oldest idle connection if it
// has expired at now, else nil. p.mu must be held.
func (p *Pool) shiftExpiredLocked(now time.Time) *Conn {
	if len(p.idle) == 0 || !p.expired(p.idle[0], now) {
		return nil
	}
	c := p.idle[0]
	n := copy(p.idle, p.idle[1:])
	p.idle[n] = nil
	p.idle = p.idle[:n]
	c.idle = false
	return c
}

// expired says whether c, idle since c.idleSince, has been idle for more
// than the idle timeout at now.
func (p *Pool) expired(c *Conn, now time.Time) bool {
	timeout := p.IdleTimeout
	if timeout <= 0 {
		timeout = DefaultIdleTimeout
	}
	return now.Sub(c.idleSince) > timeout
}

func (p *Pool) maxIdle() int {
	if p.MaxIdle <= 0 {
		return DefaultMaxIdle
	}
	return p.MaxIdle
}

func (p *Pool) now() time.Time {
	if p.Clock == nil {
		return time.Now()
	}
	return p.Clock.Now()
}

// poolNewConn wraps nc with its buffers and, where it can be probed, its
// raw descriptor.
func poolNewConn(nc net.Conn) *Conn {
	c := &Conn{Conn: nc}
	c.attach()
	if sc, ok := nc.(syscall.Conn); ok && poolCanProbe {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.probe = c.probeFD
			c.await = c.awaitFD
		}
	}
	return c
}

// poolCanProbe says whether the platform's sockets are non-blocking
// descriptors that syscall.Read can probe (tested on linux). Elsewhere, and
// for connections without a descriptor (syscall.Conn), alive trusts the
// connection.
const poolCanProbe = runtime.GOOS == "linux" || runtime.GOOS == "darwin"

// alive says whether an idle c may be handed out: a read from its
// descriptor would block, so the peer has neither closed it (EOF, reset)
// nor sent anything unasked. (Bytes already in c.R cannot be: Put does not
// keep such a connection.) It costs one read system call,
// which consumes nothing from a healthy connection; a connection found dead
// or talking is closed anyway.
//
// net/http learns this from the read loop each idle connection has. The
// cheap-looking alternative, a read deadline in the past and R.Peek(1),
// does not work: Go fails a read whose deadline has passed before making
// the system call, so it reports a timeout whatever the socket holds.
func (c *Conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if err := c.raw.Read(c.probe); err != nil {
		return false
	}
	return poolWouldBlock(c.probeErr)
}

// poolWouldBlock says whether err is a read's "nothing to read yet"
// (EAGAIN). It is written without syscall.EAGAIN, which some platforms
// (plan9) lack: on unix, Errno.Timeout is true for EAGAIN, EWOULDBLOCK and
// ETIMEDOUT, and ETIMEDOUT means the connection is dead.
func poolWouldBlock(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout() && err != syscall.ETIMEDOUT
}

// probeFD reads at most one byte from fd, which is non-blocking, leaving
// the error in c.probeErr (nil for data or EOF). It returns true: one attempt,
// never a wait for readability.
func (c *Conn) probeFD(fd uintptr) bool {
	for {
		_, c.probeErr = poolSysRead(syscall.Read, fd, c.probeBuf[:])
		if c.probeErr != syscall.EINTR {
			return true
		}
	}
}

// poolSysRead calls read on descriptor fd. It exists because syscall.Read
// takes an int on unix and a Handle on windows: passing syscall.Read lets
// the compiler pick the descriptor type, so this file builds everywhere.
func poolSysRead[FD ~int | ~uintptr](read func(FD, []byte) (int, error), fd uintptr, p []byte) (int, error) {
	return read(FD(fd), p)
}
