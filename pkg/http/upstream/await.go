package upstream

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// connWriter is what a Conn's W writes to: the connection itself, except
// in FlushAwait, which takes the request out of W instead. It notes whether
// anything was written since the last Begin, which decides whether
// FlushAwait may wait in the same step.
type connWriter struct {
	c       *Conn
	wrote   bool    // something was written since Begin
	capture *[]byte // in FlushAwait: where W's bytes go
}

func (w *connWriter) Write(p []byte) (int, error) {
	if w.capture != nil {
		*w.capture = append(*w.capture, p...)
		return len(p), nil
	}
	w.wrote = true
	return w.c.Conn.Write(p)
}

// ReadFrom keeps bufio.Writer's direct copy (a TCP connection's ReadFrom)
// for bodies of known length, as when W wrote to the connection itself.
func (w *connWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	if rf, ok := w.c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.c.Conn}, r)
}

// awaitBufs holds the requests FlushAwait takes out of W while it writes
// them: W's size, so that any W's content fits.
var awaitBufs = sync.Pool{New: func() any { b := make([]byte, 0, poolBufSize); return &b }}

// Begin marks the start of a request on c: nothing of it is written yet.
func (c *Conn) Begin() { c.cw.wrote = false }

// FlushAwait is W.Flush for the last bytes of a request, which also waits
// until the connection has something to read (the response, a close, an
// error), a deadline passes or the connection is closed. The read that
// follows then finds data instead of first failing with EAGAIN and waiting:
// one system call less per exchange. During the wait c holds no buffer: R
// and W go back to their pools and are taken again after it, so the
// exchanges waiting on a slow user container cost 8 KiB less each.
//
// It does so only when the whole request is in W (nothing of it was written
// since Begin) and c has a descriptor: the readiness wait is armed before
// the write, so a response can only arrive after it; had part of the
// request gone out already, a response to it might have been seen by the
// poller before the wait was armed, and the wait would not end. Otherwise,
// and whenever the write does not complete at once, it writes the ordinary
// way. Errors are the connection's, and leave in W what was not written, as
// a failed Flush does. An ended wait is not an error: the read that follows
// reports what ended it.
func (c *Conn) FlushAwait() error {
	if c.raw == nil || c.cw.wrote || c.W.Buffered() == 0 || c.R.Buffered() > 0 {
		return c.W.Flush() // (R is empty on a connection Put kept)
	}
	req := awaitBufs.Get().(*[]byte)
	c.cw.capture = req
	c.W.Flush() // into req: cannot fail
	c.cw.capture = nil
	c.cw.wrote = true
	c.detach()

	c.awaitReq, c.awaitBuf = *req, req
	n, err := c.writeAndAwait()
	if c.awaitBuf != nil { // not given back before the wait
		rest := c.awaitReq[n:]
		c.attach()
		if err != nil {
			c.W.Write(rest)
		}
		c.putAwaitBuf()
		return err
	}
	c.attach()
	return nil
}

// putAwaitBuf gives the request's buffer back.
func (c *Conn) putAwaitBuf() {
	*c.awaitBuf = c.awaitReq[:0]
	awaitBufs.Put(c.awaitBuf)
	c.awaitReq, c.awaitBuf = nil, nil
}

// writeAndAwait writes c.awaitReq with one write system call inside a
// read-readiness wait (RawConn.Read arms it before calling back) and, when
// all of it was written, gives its buffer back and waits. Its errors are the
// connection Write's, wrapped the same way. What the system call did not
// write for want of room is written with the connection's Write, which
// waits for room.
func (c *Conn) writeAndAwait() (int, error) {
	c.awaitN, c.awaitErr, c.awaitFirst = 0, nil, true
	_ = c.raw.Read(c.await)
	n, p := c.awaitN, c.awaitReq
	if c.awaitErr != nil {
		return n, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", c.awaitErr)}
	}
	if c.awaitBuf != nil && n < len(p) {
		m, err := c.Conn.Write(p[n:])
		return n + m, err
	}
	return n, nil
}

// awaitFD is writeAndAwait's RawConn.Read callback (c.await, bound once):
// the first call writes, the next one says the wait is over.
func (c *Conn) awaitFD(fd uintptr) bool {
	if !c.awaitFirst {
		return true // readable, or woken: the read that follows tells
	}
	c.awaitFirst = false
	p := c.awaitReq
	for c.awaitN < len(p) {
		m, err := poolSysWrite(syscall.Write, fd, p[c.awaitN:])
		if m > 0 {
			c.awaitN += m
		}
		switch {
		case err == syscall.EINTR:
		case err != nil && !poolWouldBlock(err):
			c.awaitErr = err
			return true
		case err != nil || m <= 0:
			return true
		}
	}
	c.putAwaitBuf()
	if c.testArmed != nil {
		c.testArmed()
	}
	return false
}

// poolSysWrite calls write on descriptor fd (see poolSysRead).
func poolSysWrite[FD ~int | ~uintptr](write func(FD, []byte) (int, error), fd uintptr, p []byte) (int, error) {
	return write(FD(fd), p)
}
