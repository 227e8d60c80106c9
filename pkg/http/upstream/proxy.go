package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is an http.Handler that proxies a request to the user container on
// the serving goroutine: it writes the request on a pooled connection,
// reads the response and copies it to the client, with no goroutine, no
// channel and no copy of the request.
//
// What the client sees is what the header-pruning httputil.ReverseProxy
// (FlushInterval 0) with net/http's Transport would send:
//
//   - 1xx responses other than 101 are forwarded as the ReverseProxy's
//     Got1xxResponse hook does: their headers are added to w.Header(),
//     WriteHeader(code) is called, and w.Header() is cleared;
//   - the response headers are copied value by value, minus the hop-by-hop
//     ones and those Connection names; declared trailers are announced in a
//     Trailer header (keys sorted, where the ReverseProxy takes the map's
//     order) and set after the body, undeclared ones with
//     http.TrailerPrefix;
//   - a response of unknown length or of type text/event-stream is flushed
//     at once after the head and after every write; others are not;
//   - an error before the response head goes to ErrorHandler with the error
//     net/http's Transport would return (see fail); an error while copying
//     the body aborts the response by panicking with http.ErrAbortHandler,
//     when running under an http.Server (as the ReverseProxy does).
//
// A request that is not Eligible goes to Fallback. A request that fails on
// a reused connection before any response byte is retried once on a fresh
// connection, under the Pool's retry rule.
//
// When the request's context ends, the connection's deadline is set in the
// past so that any blocking read or write ends at once, the connection is
// discarded and the error reported is the context's cause.
//
// Unlike net/http's Transport, which reads the response while it writes
// the request, Proxy writes the whole request body first. An upstream that
// answers before reading the body and closes (a 413) is still heard: after
// a failed write, Proxy looks for a response. But an upstream that streams
// its response while it reads a body larger than the socket buffers (a
// full-duplex echo) blocks both sides until the context ends.
//
// The fields must be set before the first request and not changed after.
type Proxy struct {
	// Pool holds the connections to the user container.
	Pool *Pool
	// Head writes the request head.
	Head RequestHead
	// Fallback serves the requests the lean path does not take (the
	// ReverseProxy); it must not be nil.
	Fallback http.Handler
	// ErrorHandler answers a failed exchange, as
	// httputil.ReverseProxy.ErrorHandler; nil logs the error and answers
	// 502 with no body, as the ReverseProxy's default.
	ErrorHandler func(http.ResponseWriter, *http.Request, error)
	// Buffers provides the 32 KiB copy buffers; nil uses buffers kept with
	// the per-request state, pooled.
	Buffers httputil.BufferPool
	// MaxBody is the longest request body the lean path takes; a longer
	// one, or one of unknown length, goes to Fallback. 0 means
	// DefaultMaxBody. (The lean path writes the whole body before it
	// reads the response; a body that fits in the sockets' buffers cannot
	// block on an upstream that answers while it reads.)
	MaxBody int64
	// Observer, if set, is told of every exchange, as a RoundTripper
	// around net/http's Transport would see it.
	Observer Observer
}

// DefaultMaxBody is the longest request body the lean path takes when
// Proxy.MaxBody is 0: well within a loopback connection's socket buffers.
const DefaultMaxBody = 64 << 10

// Observer is told of the exchanges the lean path makes, at the points a
// RoundTripper wrapping net/http's Transport would see them: Start before
// the request is first written, Done once, when the response head has
// arrived (resp is set, err nil) or the exchange failed (after any retry;
// resp is nil). reqBytes is the request body's length as sent. The
// request is the incoming one; resp is valid only during the call.
type Observer interface {
	Start() int64
	Done(r *http.Request, start int64, resp *Response, reqBytes int64, err error)
}

// proxyNoBodyBuf is the buffer WriteBody is given for a request without a
// body, which it never reads or writes: copy buffers are taken only while
// a body is copied, so that an exchange waiting for its response holds
// none (as the ReverseProxy).
var proxyNoBodyBuf [1]byte

// proxyBufSize is the size of the copy buffers, as the ReverseProxy's.
const proxyBufSize = 32 << 10

// errProxyHeadTooLarge is net/http's error for errRespHeadTooLarge.
var errProxyHeadTooLarge = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", MaxResponseHeadBytes)

// proxyPast is the deadline that makes every pending I/O fail at once.
var proxyPast = time.Unix(1, 0)

// proxyState is the reusable state of one exchange, pooled.
type proxyState struct {
	resp Response
	body proxyBody
	buf  []byte // the copy buffer when Proxy.Buffers is nil

	// mu guards conn, which expire (run by context.AfterFunc) deadlines,
	// and the lazy watch (see Proxy.watch): ctx, armed and stop.
	mu     sync.Mutex
	conn   *Conn
	expire func() // s.expireConn, bound once
	ctx    context.Context
	armed  bool        // an exchange runs: the timer may register the watch
	stop   func() bool // the registered watch's, nil if none
	timer  *time.Timer // runs s.arm after watchDelay; created on first use

	testRegistered func() // tests only: called when arm registers a watch
}

var proxyStates = sync.Pool{New: func() any {
	s := new(proxyState)
	s.expire = s.expireConn
	return s
}}

// watchDelay is how long an exchange runs before its context is watched:
// most exchanges with a user container on loopback end sooner, and so
// never register (a context.AfterFunc costs a channel, a map and a
// context). The end of a context during the first watchDelay of an
// exchange interrupts it watchDelay later at most.
const watchDelay = time.Millisecond

// testWatchDelay, if set (tests only), replaces watchDelay.
var testWatchDelay atomic.Int64

func currentWatchDelay() time.Duration {
	if d := testWatchDelay.Load(); d != 0 {
		return time.Duration(d)
	}
	return watchDelay
}

// expiredWatch stands for the watch of an exchange whose context had ended
// when it started: watch expired the deadline itself.
func expiredWatch() bool { return false }

// arm registers the watch of the running exchange, on the timer's
// goroutine.
func (s *proxyState) arm() {
	s.mu.Lock()
	if s.armed && s.stop == nil {
		s.stop = context.AfterFunc(s.ctx, s.expire)
		if s.testRegistered != nil {
			s.testRegistered()
		}
	}
	s.mu.Unlock()
}

// expireConn sets a past deadline on the connection in use, if any.
func (s *proxyState) expireConn() {
	s.mu.Lock()
	if s.conn != nil {
		s.conn.SetDeadline(proxyPast)
	}
	s.mu.Unlock()
}

// proxyBody reads the request body for WriteBody, keeping its error apart
// from the connection's.
type proxyBody struct {
	r   io.Reader
	err error
}

func (b *proxyBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// proxyAttempt is the outcome of sending a request and reading its head.
type proxyAttempt struct {
	err error
	// retryable: no byte of the response was read and, if the connection
	// was reused, the Pool's rule allows one retry on a fresh connection.
	retryable bool
	// mustClose: a head was read, but the connection cannot be reused
	// (writing the request failed).
	mustClose bool
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.Takes(r) {
		p.Fallback.ServeHTTP(w, r)
		return
	}
	clientIP, _, _ := net.SplitHostPort(r.RemoteAddr) // Eligible checked it
	ctx := r.Context()

	s := proxyStates.Get().(*proxyState)
	keep, abort := p.serve(ctx, w, r, s, clientIP)
	if keep {
		proxyStates.Put(s)
	}
	if abort {
		// As the ReverseProxy, once the response has started: the server
		// closes the connection without finishing the response.
		panic(http.ErrAbortHandler)
	}
}

// Takes reports whether p serves r on the lean path: r is Eligible and its
// body, if any, is within MaxBody.
func (p *Proxy) Takes(r *http.Request) bool {
	limit := p.MaxBody
	if limit == 0 {
		limit = DefaultMaxBody
	}
	if limit > 0 && (r.ContentLength < 0 || r.ContentLength > limit) {
		return false
	}
	return Eligible(r)
}

// serve runs the exchange, having released the connection when it
// returns, and reports whether s may be reused (false when a context
// callback may still hold it) and whether the response must be aborted.
func (p *Proxy) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, s *proxyState, clientIP string) (keep, abort bool) {
	var start int64
	if p.Observer != nil {
		start = p.Observer.Start()
	}
	var (
		c      *Conn
		reused bool
		err    error
	)
	if proxyReplayable(r) {
		c, reused, err = p.Pool.GetReplayable(ctx)
	} else {
		c, reused, err = p.Pool.Get(ctx)
	}
	for attempt := 0; ; attempt++ {
		if err != nil {
			p.fail(w, r, start, err)
			return true, false
		}
		p.watch(ctx, s, c)
		a := p.roundTrip(w, r, s, c, reused, clientIP)
		if a.err == nil {
			if p.Observer != nil {
				p.Observer.Done(r, start, &s.resp, r.ContentLength, nil)
			}
			return p.respond(w, r, s, c, a.mustClose)
		}
		kept := p.unwatch(s)
		p.Pool.Discard(c)
		if !kept || !a.retryable || attempt > 0 || ctx.Err() != nil {
			p.fail(w, r, start, a.err)
			return kept, false
		}
		c, err = p.Pool.GetFresh(ctx)
		reused = false
	}
}

// watch makes the end of ctx expire c's deadline until unwatch: at once if
// ctx has ended, else through a context.AfterFunc registered if the
// exchange is still running watchDelay later. It does not ask ctx for its
// Done channel, which a cancelable context makes on first demand: most
// exchanges end before watchDelay and never need it.
func (p *Proxy) watch(ctx context.Context, s *proxyState, c *Conn) {
	s.mu.Lock()
	s.conn, s.ctx, s.armed, s.stop = c, ctx, true, nil
	s.mu.Unlock()
	if ctx.Err() != nil {
		s.expireConn()
		s.mu.Lock()
		s.stop = expiredWatch
		s.mu.Unlock()
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(currentWatchDelay(), s.arm)
	} else {
		s.timer.Reset(currentWatchDelay())
	}
}

// unwatch stops the watch and reports whether c's deadline is untouched;
// if false, c must be discarded and s must not be reused: the callback may
// still run. (A timer callback still on its way finds armed false, or the
// next exchange's state, which it then watches early: no harm.)
func (p *Proxy) unwatch(s *proxyState) bool {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Lock()
	stop := s.stop
	s.armed, s.stop, s.ctx = false, nil, nil
	s.mu.Unlock()
	if stop != nil && !stop() {
		return false
	}
	s.mu.Lock()
	s.conn = nil
	s.mu.Unlock()
	return true
}

// roundTrip writes r on c and reads the response head (readHead).
func (p *Proxy) roundTrip(w http.ResponseWriter, r *http.Request, s *proxyState, c *Conn, reused bool, clientIP string) proxyAttempt {
	c.Begin()
	chunked, err := p.Head.Write(c.W, r, clientIP)
	if err != nil {
		return proxyAttempt{err: err}
	}
	if r.ContentLength != 0 {
		s.body = proxyBody{r: r.Body}
		buf := p.getBuf(s)
		err = WriteBody(c.W, &s.body, chunked, buf)
		p.putBuf(buf)
		bodyErr := s.body.err
		s.body = proxyBody{}
		// net/http reports an error while copying the body (reading it or
		// writing it) as is; one writing the last chunk after it as a
		// broken connection. It copies a body of known length with the
		// TCP connection's ReadFrom, which decorates any error (and
		// leaves nothing in the buffer, so the final flush is the copy).
		inCopy := err != nil
		if err == nil {
			err = c.FlushAwait()
		}
		if err != nil && !chunked {
			err = &net.OpError{Op: "readfrom", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
			inCopy = true
		}
		if err != nil {
			if bodyErr == nil {
				// The upstream may have answered before reading the
				// whole body (a 413) and closed: net/http, reading while
				// it writes, usually forwards that answer. Look for it.
				if a := p.readHead(w, r, s, c, false); a.err == nil {
					a.mustClose = true
					return a
				}
			}
			if !inCopy {
				err = fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)
			}
			return proxyAttempt{err: err} // bytes were sent: never retried
		}
	} else {
		queued := c.W.Buffered()
		if err = WriteBody(c.W, nil, chunked, proxyNoBodyBuf[:]); err == nil {
			err = c.FlushAwait()
		}
		if err != nil {
			if c.W.Buffered() < queued {
				// Part of the head went out: net/http neither retries
				// nor keeps the error undecorated.
				return proxyAttempt{err: fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err)}
			}
			// Nothing written, no body: net/http retries any method.
			return proxyAttempt{err: err, retryable: reused}
		}
	}
	return p.readHead(w, r, s, c, reused)
}

// readHead reads the response head into s.resp, forwarding 1xx responses
// to w.
func (p *Proxy) readHead(w http.ResponseWriter, r *http.Request, s *proxyState, c *Conn, reused bool) proxyAttempt {
	// No response byte yet: a failure here is net/http's
	// transportReadFromServerError, returned undecorated.
	if _, err := c.R.Peek(1); err != nil {
		return proxyAttempt{err: err, retryable: reused && proxyReplayable(r)}
	}
	for {
		if err := ReadResponse(c.R, r.Method, &s.resp); err != nil {
			if errors.Is(err, errRespHeadTooLarge) {
				err = errProxyHeadTooLarge
			}
			return proxyAttempt{err: proxyHeadError{err}}
		}
		code := s.resp.StatusCode
		if code == http.StatusSwitchingProtocols {
			// Eligible requests ask for no upgrade; the ReverseProxy
			// refuses a switch to a protocol that was not requested.
			return proxyAttempt{err: fmt.Errorf("backend tried to switch protocol %q when %q was requested", proxyUpgradeType(s.resp.Header), "")}
		}
		if code < 100 || code > 199 {
			return proxyAttempt{}
		}
		// As net/http, the 1xx responses delivered are not counted: each
		// is written to the client, and the head size is bounded.
		h := w.Header()
		proxyAddHeader(h, s.resp.Header)
		w.WriteHeader(code)
		clear(h)
	}
}

// respond copies the response head in s.resp, its body from c and its
// trailers to w, then stops the watch and gives c back (or discards it).
// It reports whether s may be reused and whether the response must be
// aborted (the body's copy failed, under an http.Server).
func (p *Proxy) respond(w http.ResponseWriter, r *http.Request, s *proxyState, c *Conn, mustClose bool) (keep, abort bool) {
	resp := &s.resp
	h := w.Header()
	proxyCopyHeader(h, resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)

	flush := proxyFlushNow(resp)
	buf := p.getBuf(s)
	err := proxyCopyBody(w, resp, c, buf, flush)
	p.putBuf(buf)
	kept := p.unwatch(s)
	if err == nil && kept && !mustClose && resp.Complete() && !resp.Close {
		p.Pool.Put(c)
	} else {
		p.Pool.Discard(c)
	}
	if err != nil {
		// The ReverseProxy panics only under a server, which recovers.
		return kept, r.Context().Value(http.ServerContextKey) != nil
	}

	if len(resp.Trailer) > 0 {
		proxyFlush(w) // forces chunking, so the trailers can be sent
	}
	if len(resp.Trailer) == announced {
		proxyAddHeader(h, resp.Trailer)
	} else {
		for k, vv := range resp.Trailer {
			k = http.TrailerPrefix + k
			for _, v := range vv {
				h.Add(k, v)
			}
		}
	}
	return kept, false
}

// proxyCopyBody copies resp's body from c to w with buf, flushing after
// every write when flush is set. Any read or write error is returned.
//
// When flush is set the ReverseProxy also flushes the head from a timer
// that fires at once, racing its first write: the write wins (and the
// server sniffs a Content-Type from its bytes) when body bytes are
// already there and its first read returns without reaching the body's end
// (net/http's body then synchronizes with its read loop); the timer wins
// otherwise. proxyCopyBody does what it usually does.
func proxyCopyBody(w http.ResponseWriter, resp *Response, c *Conn, buf []byte, flush bool) error {
	headPending := flush
	if flush && c.R.Buffered() == 0 {
		proxyFlush(w)
		headPending = false
	}
	body, err := resp.Body(c.R)
	if err != nil {
		return err
	}
	for {
		n, rerr := body.Read(buf)
		if headPending {
			if n == 0 || rerr != nil {
				proxyFlush(w)
			}
			headPending = false
		}
		if n > 0 {
			nw, werr := w.Write(buf[:n])
			if flush {
				proxyFlush(w)
			}
			if werr != nil {
				return werr
			}
			if nw != n {
				return io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// fail reports err to the Observer and the ErrorHandler, as the context's
// cause when the request's context has ended (net/http prefers it to the
// I/O errors the cancellation caused).
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, start int64, err error) {
	if ctx := r.Context(); ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if p.Observer != nil {
		p.Observer.Done(r, start, nil, r.ContentLength, err)
	}
	if p.ErrorHandler != nil {
		p.ErrorHandler(w, r, err)
		return
	}
	log.Printf("http: proxy error: %v", err)
	w.WriteHeader(http.StatusBadGateway)
}

// getBuf returns a copy buffer: from p.Buffers, or s's own.
func (p *Proxy) getBuf(s *proxyState) []byte {
	if p.Buffers != nil {
		return p.Buffers.Get()
	}
	if s.buf == nil {
		s.buf = make([]byte, proxyBufSize)
	}
	return s.buf
}

// putBuf gives back a buffer from getBuf (s's own goes with s).
func (p *Proxy) putBuf(buf []byte) {
	if p.Buffers != nil {
		p.Buffers.Put(buf)
	}
}

// proxyHeadError is an error reading a response head after its first
// byte. Its text is net/http's: the Transport's read loop closes the
// connection on the error, after which the Transport decorates it; and
// ReadResponse's texts are http.ReadResponse's with an "upstream: " prefix.
type proxyHeadError struct{ err error }

func (e proxyHeadError) Error() string {
	return "net/http: HTTP/1.x transport connection broken: " + strings.TrimPrefix(e.err.Error(), "upstream: ")
}

func (e proxyHeadError) Unwrap() error { return e.err }

// proxyReplayable reports whether net/http's Transport may resend r after
// it failed on a reused connection with bytes written: the outbound request
// has no body (the ReverseProxy drops a zero-length one) and an idempotent
// method or an idempotency key.
func proxyReplayable(r *http.Request) bool {
	if r.ContentLength != 0 {
		return false
	}
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	if !ok {
		_, ok = r.Header["X-Idempotency-Key"]
	}
	return ok
}

// proxyFlushNow reports whether the ReverseProxy would flush the response
// immediately: text/event-stream, or a length not known in advance.
func proxyFlushNow(resp *Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct := resp.Header["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	// mime.ParseMediaType lowercases and trims the type before the first
	// ';': only a value starting so can be text/event-stream.
	const sse = "text/event-stream"
	v := strings.TrimLeft(ct[0], " \t")
	if len(v) < len(sse) || !strings.EqualFold(v[:len(sse)], sse) {
		return false
	}
	base, _, _ := mime.ParseMediaType(ct[0])
	return base == sse
}

// proxyFlush flushes w, as the ReverseProxy does, ignoring errors.
func proxyFlush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w).Flush()
}

// proxyUpgradeType is the ReverseProxy's upgradeType.
func proxyUpgradeType(h http.Header) string {
	if !proxyHasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// proxyHasToken reports whether a comma-separated value of vv holds token,
// case-insensitively.
func proxyHasToken(vv []string, token string) bool {
	for _, v := range vv {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(reqTrim(f), token) {
				return true
			}
		}
	}
	return false
}

// proxyAddHeader adds every value of src to dst, as the ReverseProxy's
// copyHeader (src's keys are canonical already).
func proxyAddHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// proxyCopyHeader adds src's values to dst, minus the hop-by-hop fields and
// those src's Connection names, as the ReverseProxy's
// removeHopByHopHeaders then copyHeader. The values are copied, never
// aliased (src's slices are reused), into one allocation shared by the new
// keys; each key's slice is capped so that appending to it cannot clobber
// the next.
func proxyCopyHeader(dst, src http.Header) {
	conn := src["Connection"]
	n := 0
	for k, vv := range src {
		if !reqHopByHop(k) && !reqListed(conn, k) {
			n += len(vv)
		}
	}
	if n == 0 {
		return
	}
	all := make([]string, n)
	for k, vv := range src {
		if len(vv) == 0 || reqHopByHop(k) || reqListed(conn, k) {
			continue
		}
		if old := dst[k]; len(old) > 0 {
			dst[k] = append(old, vv...)
			continue
		}
		m := copy(all, vv)
		dst[k] = all[:m:m]
		all = all[m:]
	}
}
