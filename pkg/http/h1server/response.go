package h1server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is net/http's buffer between a handler's writes and
// the response's framing: a response whose handler returns before writing
// more gets a Content-Length, a longer one is chunked (and the chunk sizes
// on the wire follow from it).
const bufferBeforeChunking = 2048

// maxPostHandlerRead is how much of an unread request body is discarded
// after the handler to keep the connection; beyond it, it is closed.
const maxPostHandlerRead = 256 << 10

var bufferPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferBeforeChunking) }}

// response is the http.ResponseWriter of a fast-path request. It behaves
// as net/http's HTTP/1.1 response does, byte for byte on the wire: the same
// status line, header order and added headers (Date, Content-Length,
// Content-Type sniffing, Transfer-Encoding, Connection), the same chunk
// sizes, trailers, 1xx responses, errors and log messages. The handler
// must not use it after ServeHTTP returns.
type response struct {
	c      *conn
	req    *http.Request
	body   *body // the request body as read (nil: none)
	header http.Header
	// snap is the header as of WriteHeader (when the handler had called
	// Header) or the first Header call after it: what is written.
	snap         http.Header
	calledHeader bool
	wroteHeader  bool
	handlerDone  bool
	fullDuplex   bool
	status       int
	// contentLength is the declared length, -1 if none.
	contentLength   int64
	written         int64
	closeAfterReply bool
	wantsClose      bool
	bodyLimitHit    bool

	w  *bufio.Writer // bufferBeforeChunking, over cw
	cw chunkWriter

	trailers    []string
	closeNotify chan bool
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
	_ io.StringWriter     = (*response)(nil)
)

func (w *response) Header() http.Header {
	if w.snap == nil && w.wroteHeader && !w.cw.wroteHeader {
		w.snap = w.c.snapshot(w.header)
	}
	w.calledHeader = true
	return w.header
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked {
		w.c.logCaller("http: response.WriteHeader on hijacked connection from %s (%s:%d)")
		return
	}
	if w.wroteHeader {
		w.c.logCaller("http: superfluous response.WriteHeader call from %s (%s:%d)")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.c.bw
		writeStatusLine(bw, code)
		w.header.WriteSubset(bw, excludedNoBody)
		bw.Write(crlf)
		bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.calledHeader && w.snap == nil {
		w.snap = w.c.snapshot(w.header)
	}
	if cl := headerGet(w.header, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.s.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) { return w.write(len(p), p, "") }

func (w *response) WriteString(s string) (int, error) { return w.write(len(s), nil, s) }

func (w *response) write(n int, b []byte, s string) (int, error) {
	if w.c.hijacked {
		if n > 0 {
			w.c.logCaller("http: response.Write on hijacked connection from %s (%s:%d)")
		}
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if b != nil {
		return w.w.Write(b)
	}
	return w.w.WriteString(s)
}

// ReadFrom copies src as net/http's response does (which shapes the chunks
// on the wire): the first 512 bytes through the buffer, for sniffing, then,
// for an unchunked body, straight to the connection.
func (w *response) ReadFrom(src io.Reader) (n int64, err error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	rf, ok := w.c.rwc.(io.ReaderFrom)
	if !ok {
		return io.CopyBuffer(writerOnly{w}, src, buf)
	}
	if !w.cw.wroteHeader {
		n0, err := io.CopyBuffer(writerOnly{w}, io.LimitReader(src, sniffLen), buf)
		n += n0
		if err != nil || n0 < sniffLen {
			return n, err
		}
	}
	w.w.Flush()
	w.cw.flush()
	if !w.cw.chunking && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		n0, err := rf.ReadFrom(src)
		n += n0
		w.written += n0
		return n, err
	}
	n0, err := io.CopyBuffer(writerOnly{w}, src, buf)
	return n + n0, err
}

// sniffLen is how much of a body http.DetectContentType reads.
const sniffLen = 512

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writerOnly hides ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

// Flush sends what is buffered, the header first if need be.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	err := w.w.Flush()
	if e2 := w.cw.flush(); err == nil {
		err = e2
	}
	return err
}

// Hijack hands the connection to the handler, with what is buffered.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.handlerDone {
		panic("net/http: Hijack called after ServeHTTP finished")
	}
	if w.wroteHeader {
		w.cw.flush()
	}
	rwc, brw, err := w.c.hijack()
	if err == nil {
		bufferPool.Put(w.w)
		w.w = nil
	}
	return rwc, brw, err
}

// SetReadDeadline, SetWriteDeadline and EnableFullDuplex serve
// http.ResponseController.
// Deadlines a handler sets are cleared after its response, as net/http's
// server clears them before the next request.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.readDeadlineSet = true
	return w.c.rwc.SetReadDeadline(t)
}

func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.writeDeadlineSet = true
	return w.c.rwc.SetWriteDeadline(t)
}
func (w *response) EnableFullDuplex() error { w.fullDuplex = true; return nil }

// CloseNotify is http.CloseNotifier's: it receives when the client is
// seen gone (by the background read, the server's delay after the body).
func (w *response) CloseNotify() <-chan bool {
	if w.handlerDone {
		panic("net/http: CloseNotify called after ServeHTTP finished")
	}
	return w.c.closeNotifier()
}

// snapshot copies h, as Header.Clone does (values included, so that the
// handler's later changes do not show), into storage the connection reuses
// from one response to the next: the copy is never given out, and serves
// only while the response's head is written.
func (c *conn) snapshot(h http.Header) http.Header {
	if c.snap == nil {
		c.snap = make(http.Header, len(h))
	}
	clear(c.snap)
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	vals := c.snapVals[:0]
	if cap(vals) < n {
		vals = make([]string, 0, n)
	}
	for k, vv := range h {
		if vv == nil {
			c.snap[k] = nil // kept: a nil value still suppresses Content-Type sniffing
			continue
		}
		start := len(vals)
		vals = append(vals, vv...)
		c.snap[k] = vals[start:len(vals):len(vals)]
	}
	c.snapVals = vals[:0]
	if len(c.snap) > maxPooledSnapshot {
		defer func() { c.snap, c.snapVals = nil, nil }() // unusual: not kept
	}
	return c.snap
}

// maxPooledSnapshot bounds the snapshot map a connection keeps (clear is
// O(capacity)).
const maxPooledSnapshot = 64

// finish completes the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.w.Flush()
	bufferPool.Put(w.w)
	w.w = nil
	w.cw.close()
	w.c.bw.Flush()
	// The body first: once closed, no goroutine of the handler's can reach
	// its end and arm the watch after endRequest disarmed it.
	if w.body != nil {
		w.body.Close()
	}
	w.c.endRequest()
}

// shouldReuseConnection reports whether the next request may be read.
func (w *response) shouldReuseConnection() bool {
	switch {
	case w.closeAfterReply:
		return false
	case w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowed(w.status) && w.contentLength != w.written:
		return false
	case w.c.werr != nil:
		return false
	case w.body != nil && w.body.closedEarly():
		return false
	}
	return true
}

func (w *response) requestTooLarge() {
	w.closeAfterReply = true
	w.bodyLimitHit = true
	if !w.wroteHeader {
		w.Header().Set("Connection", "close")
	}
}

func (w *response) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if !httpguts.ValidTrailerHeader(k) {
		return
	}
	w.trailers = append(w.trailers, k)
}

// finalTrailers are the trailers to send: keys with http.TrailerPrefix,
// and the declared ones.
func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return t
}

// chunkWriter frames the body on the connection: it writes the header
// before the first bytes, then the bytes, chunked or not.
type chunkWriter struct {
	res         *response
	wroteHeader bool
	chunking    bool
}

func (cw *chunkWriter) Write(p []byte) (n int, err error) {
	if !cw.wroteHeader {
		cw.writeHeader(p)
	}
	if cw.res.req.Method == http.MethodHead {
		return len(p), nil
	}
	bw := cw.res.c.bw
	if cw.chunking {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		_, err = bw.Write(crlf)
		if err != nil {
			cw.res.c.rwc.Close()
			return 0, err
		}
	}
	n, err = bw.Write(p)
	if cw.chunking && err == nil {
		_, err = bw.Write(crlf)
	}
	if err != nil {
		cw.res.c.rwc.Close()
	}
	return n, err
}

func (cw *chunkWriter) flush() error {
	if !cw.wroteHeader {
		cw.writeHeader(nil)
	}
	return cw.res.c.bw.Flush()
}

func (cw *chunkWriter) close() {
	if !cw.wroteHeader {
		cw.writeHeader(nil)
	}
	if cw.chunking {
		bw := cw.res.c.bw
		bw.WriteString("0\r\n")
		if t := cw.res.finalTrailers(); t != nil {
			t.Write(bw)
		}
		bw.WriteString("\r\n")
	}
}

// extraHeader are the headers the server adds, in net/http's order.
type extraHeader struct {
	contentType, connection, transferEncoding string
	date, contentLength                       []byte
}

func (h *extraHeader) write(bw *bufio.Writer) {
	if h.date != nil {
		bw.WriteString("Date: ")
		bw.Write(h.date)
		bw.Write(crlf)
	}
	if h.contentLength != nil {
		bw.WriteString("Content-Length: ")
		bw.Write(h.contentLength)
		bw.Write(crlf)
	}
	for i, v := range [...]string{h.contentType, h.connection, h.transferEncoding} {
		if v != "" {
			bw.WriteString(extraKeys[i])
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.Write(crlf)
		}
	}
}

var extraKeys = [...]string{"Content-Type", "Connection", "Transfer-Encoding"}

// writeHeader decides the response's framing and writes its head; p is
// the first part of the body (what the handler wrote before the first
// flush), used to sniff a Content-Type and, when the handler is done, as
// the whole body's length.
func (cw *chunkWriter) writeHeader(p []byte) {
	cw.wroteHeader = true
	w := cw.res
	keepAlives := !w.c.s.shuttingDown.Load()
	isHEAD := w.req.Method == http.MethodHead

	header, owned := w.snap, w.snap != nil
	if !owned {
		header = w.header
	}
	var exclude map[string]bool
	del := func(k string) {
		if owned {
			header.Del(k)
			return
		}
		if _, ok := header[k]; !ok {
			return
		}
		if exclude == nil {
			exclude = make(map[string]bool)
		}
		exclude[k] = true
	}
	var extra extraHeader

	trailers := false
	for k := range w.snap {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if exclude == nil {
				exclude = make(map[string]bool)
			}
			exclude[k] = true
			trailers = true
		}
	}
	for _, v := range w.snap["Trailer"] {
		trailers = true
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				w.declareTrailer(f)
			}
		}
	}

	te := headerGet(header, "Transfer-Encoding")
	hasTE := te != ""
	if w.handlerDone && !trailers && !hasTE && bodyAllowed(w.status) && !headerHas(header, "Content-Length") && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		extra.contentLength = strconv.AppendInt(w.c.clenBuf[:0], int64(len(p)), 10)
	}
	hasCL := w.contentLength != -1
	if w.wantsClose {
		w.closeAfterReply = true
	}
	if headerGet(header, "Connection") == "close" || !keepAlives {
		w.closeAfterReply = true
	}

	if w.req.ContentLength != 0 && !w.closeAfterReply && !w.fullDuplex {
		w.discardBody(del, &extra)
	}

	code := w.status
	if bodyAllowed(code) {
		_, haveType := header["Content-Type"]
		hasCE := len(header.Get("Content-Encoding")) > 0
		if !hasCE && !haveType && !hasTE && len(p) > 0 {
			extra.contentType = http.DetectContentType(p)
		}
	} else {
		for _, k := range suppressedHeaders(code) {
			del(k)
		}
	}
	if !headerHas(header, "Date") {
		extra.date = appendDate(w.c.dateBuf[:0], time.Now())
	}
	if hasCL && hasTE && te != "identity" {
		w.c.s.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		del("Content-Length")
		hasCL = false
	}

	switch {
	case isHEAD || !bodyAllowed(code) || code == http.StatusNoContent:
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case hasTE && te == "identity":
		cw.chunking = false
		w.closeAfterReply = true
		del("Transfer-Encoding")
	default:
		cw.chunking = true
		extra.transferEncoding = "chunked"
		if hasTE && te == "chunked" {
			del("Transfer-Encoding")
		}
	}
	if cw.chunking {
		del("Content-Length")
	}
	if w.closeAfterReply && (!keepAlives || !hasToken(headerGet(w.snap, "Connection"), "close")) {
		del("Connection")
		extra.connection = "close"
	}

	bw := w.c.bw
	writeStatusLine(bw, code)
	w.snap.WriteSubset(bw, exclude)
	extra.write(bw)
	bw.Write(crlf)
}

// discardBody reads what the handler left of the request body, up to
// maxPostHandlerRead, so that the connection can serve the next request;
// a larger or broken rest closes it.
func (w *response) discardBody(del func(string), extra *extraHeader) {
	var discard, tooBig bool
	if b, ok := w.req.Body.(*body); ok && b == w.body {
		b.mu.Lock()
		switch {
		case b.closed:
			if !b.sawEOF {
				w.closeAfterReply = true
			}
		case b.remaining >= maxPostHandlerRead:
			tooBig = true
		default:
			discard = true
		}
		b.mu.Unlock()
	} else {
		discard = true
	}
	if discard && w.body != nil {
		_, err := io.CopyN(io.Discard, w.body, maxPostHandlerRead+1)
		switch err {
		case nil:
			tooBig = true
		case http.ErrBodyReadAfterClose:
		case io.EOF:
			if err := w.body.Close(); err != nil {
				w.closeAfterReply = true
			}
		default:
			w.closeAfterReply = true
		}
	}
	if tooBig {
		w.requestTooLarge()
		del("Connection")
		extra.connection = "close"
	}
}

var excludedNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

var (
	suppressed304    = []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	suppressedNoBody = []string{"Content-Length", "Transfer-Encoding"}
)

func suppressedHeaders(status int) []string {
	switch {
	case status == http.StatusNotModified:
		return suppressed304
	case !bodyAllowed(status):
		return suppressedNoBody
	}
	return nil
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func writeStatusLine(bw *bufio.Writer, code int) {
	bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
}

// headerGet is Header.Get for a canonical key, without canonicalising.
func headerGet(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func headerHas(h http.Header, k string) bool {
	_, ok := h[k]
	return ok
}

// appendDate appends t as an HTTP date (http.TimeFormat, UTC), formatting
// it once per second.
func appendDate(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return append(b, d.text...)
	}
	text := t.UTC().AppendFormat(nil, http.TimeFormat)
	lastDate.Store(&dateText{sec: sec, text: text})
	return append(b, text...)
}

type dateText struct {
	sec  int64
	text []byte
}

var lastDate atomic.Pointer[dateText]

// relevantCaller is the first caller outside this package and net/http,
// for the log messages net/http writes with it.
func relevantCaller() runtime.Frame {
	pc := make([]uintptr, 16)
	n := runtime.Callers(1, pc)
	frames := runtime.CallersFrames(pc[:n])
	var frame runtime.Frame
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "net/http.") && !strings.Contains(f.Function, "/h1server.") {
			return f
		}
		frame = f
		if !more {
			return frame
		}
	}
}

func callerArgs() (string, string, int) {
	f := relevantCaller()
	return f.Function, path.Base(f.File), f.Line
}
