package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown.
const (
	stateNew int32 = iota
	stateActive
	stateIdle
	stateGone // closed, hijacked or handed to the generic server
)

// aLongTimeAgo is a read deadline that ends a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection served by the fast path.
type conn struct {
	s      *Server
	rwc    net.Conn
	remote string
	ctx    context.Context // the connection's, which is also its requests'
	// reqTemplate is an empty request with ctx as its context: copying it
	// gives a request that context without Request.WithContext's second
	// allocation.
	reqTemplate http.Request
	cancel      context.CancelFunc
	accepted    time.Time
	state       atomic.Int32

	br *bufio.Reader // over cr
	bw *bufio.Writer // over the connection, recording write errors in werr
	cr connReader

	werr     error
	hijacked bool
	// header is the response header map of the connection's requests,
	// emptied for each: a handler may not use it after it returns.
	header http.Header
	// The header snapshot of the current response and its values'
	// storage, reused (response.snapshot).
	snap     http.Header
	snapVals []string
	// A handler set a deadline through http.ResponseController: cleared
	// after its response.
	readDeadlineSet, writeDeadlineSet bool
	lastMethod                        string
	clenBuf                           [20]byte
	dateBuf                           [29]byte

	// The background read of the request being served (watch).
	mu       sync.Mutex
	cond     sync.Cond
	armed    bool // the request's body is read: a watch may start
	watching bool // a watch read is in flight
	aborted  bool // the watch read was ended on purpose
	timer    *time.Timer
	notify   chan bool // CloseNotify's, for the request (nil: not asked)
}

// connReader reads the connection, returning first the byte a watch read
// (a pipelined request's first byte).
type connReader struct {
	c       *conn
	hasByte bool
	b       [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	c.mu.Lock()
	if r.hasByte && len(p) > 0 {
		p[0] = r.b[0]
		r.hasByte = false
		c.mu.Unlock()
		return 1, nil
	}
	c.mu.Unlock()
	return c.rwc.Read(p)
}

// errWriter records the connection's first write error.
type errWriter struct{ c *conn }

func (w errWriter) Write(p []byte) (int, error) {
	n, err := w.c.rwc.Write(p)
	if err != nil && w.c.werr == nil {
		w.c.werr = err
		w.c.cancel()
	}
	return n, err
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc, remote: rwc.RemoteAddr().String(), accepted: time.Now()}
	c.cond.L = &c.mu
	c.cr.c = c
	c.br = bufio.NewReaderSize(&c.cr, readBufferSize)
	c.bw = bufio.NewWriterSize(errWriter{c}, writeBufferSize)
	ctx := context.WithValue(s.baseCtx, http.LocalAddrContextKey, rwc.LocalAddr())
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.reqTemplate = *new(http.Request).WithContext(c.ctx)
	c.header = make(http.Header, 8)
	return c
}

// Buffer sizes, net/http's.
const (
	readBufferSize  = 4 << 10
	writeBufferSize = 4 << 10
)

// serve reads and answers requests until the connection ends, is
// hijacked, or meets a request for the generic server.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			c.s.logf("http: panic serving %v: %v\n%s", c.remote, p, buf)
		}
		c.cancel()
		c.state.Store(stateGone)
		if !c.hijacked && !handedOff {
			c.bw.Flush()
			c.rwc.Close()
		}
		c.s.untrack(c)
	}()

	headerDeadline := false
	if d := c.s.ReadHeaderTimeout; d > 0 {
		c.rwc.SetReadDeadline(time.Now().Add(d))
		headerDeadline = true
	}
	for first := true; ; first = false {
		// The next request's first bytes: no deadline but the first
		// request's; net/http waits for four of them, except for the
		// first request.
		want := 4
		if first {
			want = 1
		}
		if _, err := c.br.Peek(want); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) && !c.state.CompareAndSwap(stateNew, stateActive) {
			return // closed by Shutdown
		}
		if c.lastMethod == http.MethodPost {
			peek, _ := c.br.Peek(4)
			c.br.Discard(leadingCRorLF(peek))
		}
		h, n, o := c.readHead(&headerDeadline)
		if o == generic {
			if !first && c.answersBadLine() {
				return
			}
			handedOff = c.s.handOff(c)
			return
		}
		if o != complete || c.s.shuttingDown.Load() {
			return
		}
		if headerDeadline {
			c.rwc.SetReadDeadline(time.Time{})
			headerDeadline = false
		}
		c.br.Discard(n)
		c.lastMethod = h.method

		w := c.serveRequest(&h)
		if c.hijacked {
			return
		}
		if c.writeDeadlineSet {
			c.rwc.SetWriteDeadline(time.Time{})
			c.writeDeadlineSet = false
		}
		if c.readDeadlineSet {
			c.rwc.SetReadDeadline(time.Time{})
			c.readDeadlineSet = false
		}
		reuse := w.shouldReuseConnection()
		closeWait := w.bodyLimitHit || (w.body != nil && w.body.closedEarly())
		if !reuse {
			if closeWait {
				c.closeWriteAndWait()
			}
			return
		}
		c.state.Store(stateIdle)
		if c.s.shuttingDown.Load() {
			return
		}
	}
}

// readHead waits for a complete head (or the end of the fast path's
// interest in it), setting the header deadline before reading more.
func (c *conn) readHead(deadlineSet *bool) (head, int, outcome) {
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		h, n, o := parseHead(buf)
		if o != needMore {
			return h, n, o
		}
		if c.br.Buffered() == readBufferSize {
			return h, 0, generic // a head larger than the buffer
		}
		if d := c.s.ReadHeaderTimeout; d > 0 && !*deadlineSet {
			c.rwc.SetReadDeadline(time.Now().Add(d))
			*deadlineSet = true
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return h, 0, needMore // net/http closes without an answer
			}
			return h, 0, generic // it answers what it has (a 400, mostly)
		}
	}
}

// answersBadLine answers, as net/http would, a request that fails to parse
// in fewer bytes than net/http's server reads at the start of a connection
// to look for HTTP/2's preface ("PRI * HTTP/2.0"). Handed over, it would
// wait for more, while mid-connection net/http answers a 400 at once. It
// reports whether it answered (and the connection is to be closed).
func (c *conn) answersBadLine() bool {
	buf, _ := c.br.Peek(c.br.Buffered())
	if len(buf) >= len(h2PrefaceStart) {
		return false
	}
	_, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf)))
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return false // more bytes may come: the generic server waits for them
	}
	io.WriteString(c.rwc, badRequestResponse)
	return true
}

const (
	h2PrefaceStart     = "PRI * HTTP/2.0"
	badRequestResponse = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
)

func leadingCRorLF(b []byte) int {
	n := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			break
		}
		n++
	}
	return n
}

// requestAlloc is what one request allocates, in one piece: its response
// writer, its request and the request's URL.
type requestAlloc struct {
	res response
	req http.Request
	url url.URL
}

// serveRequest runs the handler on one request and completes its
// response.
func (c *conn) serveRequest(h *head) *response {
	// The request's context is the connection's (reqTemplate; see Server):
	// cancelled when the client goes away, not when the handler returns.
	x := &requestAlloc{req: c.reqTemplate, url: h.url}
	w := &x.res
	clear(c.header)
	w.c, w.contentLength, w.header = c, -1, c.header
	w.w = bufferPool.Get().(*bufio.Writer)
	w.w.Reset(&w.cw)
	w.cw.res = w
	req := &x.req
	req.Method = h.method
	req.URL = &x.url
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header = h.header
	req.Body = http.NoBody
	req.ContentLength = h.contentLength
	req.Close = h.close
	req.Host = h.host
	req.RemoteAddr = c.remote
	req.RequestURI = h.target
	if h.contentLength > 0 {
		w.body = &body{c: c, remaining: h.contentLength, closing: h.close}
		req.Body = w.body
	}
	w.req = req
	w.wantsClose = h.close || hasToken(h.firstConnection, "close")

	if w.body == nil {
		c.bodyDone()
	}
	c.s.Handler.ServeHTTP(w, w.req)
	if c.hijacked {
		return w
	}
	w.finish()
	return w
}

// bodyDone arms the watch: the request's body is read, so the connection
// may be read in the background, after the delay, to notice a client that
// goes away (or pipelines its next request). It may run on a goroutine of
// the handler's (one reading the body), hence the lock.
func (c *conn) bodyDone() {
	c.mu.Lock()
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(c.s.BackgroundReadDelay, c.watch)
	} else {
		c.timer.Reset(c.s.BackgroundReadDelay)
	}
	c.mu.Unlock()
}

// watch is the background read, on the timer's goroutine.
func (c *conn) watch() {
	c.mu.Lock()
	if !c.armed || c.watching || c.cr.hasByte {
		c.mu.Unlock()
		return
	}
	c.watching = true
	c.mu.Unlock()

	n, err := c.rwc.Read(c.cr.b[:])

	c.mu.Lock()
	if n == 1 {
		c.cr.hasByte = true
	}
	if err != nil && !c.aborted {
		// The client went away (or a deadline the handler set passed).
		c.cancel()
		if c.notify != nil {
			select {
			case c.notify <- true:
			default:
			}
		}
	}
	c.watching, c.aborted = false, false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// endRequest stops the watch and waits for a watch read in flight.
func (c *conn) endRequest() {
	c.mu.Lock()
	c.stopWatchLocked()
	c.notify = nil
	c.mu.Unlock()
}

// stopWatchLocked disarms the watch, and ends and waits for a watch read
// in flight; c.mu is held. A timer callback still on its way finds the
// watch disarmed.
func (c *conn) stopWatchLocked() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.armed = false
	if !c.watching {
		return
	}
	c.aborted = true
	c.rwc.SetReadDeadline(aLongTimeAgo)
	for c.watching {
		c.cond.Wait()
	}
	c.rwc.SetReadDeadline(time.Time{})
}

func (c *conn) closeNotifier() <-chan bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notify == nil {
		c.notify = make(chan bool, 1)
	}
	return c.notify
}

// hijack gives the connection to the handler, with its buffers.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter, error) {
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.mu.Lock()
	c.stopWatchLocked()
	hasByte := c.cr.hasByte
	c.mu.Unlock()
	c.hijacked = true
	c.state.Store(stateGone)
	c.s.untrack(c) // as net/http, Shutdown does not wait for a hijacked connection
	c.rwc.SetDeadline(time.Time{})
	if hasByte {
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return nil, nil, err
		}
	}
	c.bw.Reset(c.rwc)
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// closeWriteAndWait flushes, half-closes and waits a little before the
// close, so that the client reads the response before a reset (net/http's
// rule after a request body left unread).
func (c *conn) closeWriteAndWait() {
	c.bw.Flush()
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	time.Sleep(rstAvoidanceDelay)
}

const rstAvoidanceDelay = 500 * time.Millisecond

func (c *conn) logCaller(format string) {
	fn, file, line := callerArgs()
	c.s.logf(format, fn, file, line)
}
