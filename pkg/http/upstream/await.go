package upstream

import (
	"io"
	"net"
	"os"
	"syscall"
)

// connWriter is what a Conn's W writes to: the connection itself, except
// during FlushAwait. It notes whether anything was written since the last
// Begin, which decides whether FlushAwait may wait in the same step.
type connWriter struct {
	c        *Conn
	wrote    bool // something was written since Begin
	awaiting bool // inside FlushAwait
}

func (w *connWriter) Write(p []byte) (int, error) {
	w.wrote = true
	if w.awaiting {
		return w.c.writeAndAwait(p)
	}
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

// Begin marks the start of a request on c: nothing of it is written yet.
func (c *Conn) Begin() { c.cw.wrote = false }

// FlushAwait is W.Flush for the last bytes of a request, which also waits
// until the connection has something to read (the response, a close, an
// error), a deadline passes or the connection is closed. The read that
// follows then finds data instead of first failing with EAGAIN and waiting:
// one system call less per exchange.
//
// It does so only when the whole request is in W (nothing of it was written
// since Begin) and c has a descriptor: the readiness wait is armed before
// the write, so a response can only arrive after it; had part of the
// request gone out already, a response to it might have been seen by the
// poller before the wait was armed, and the wait would not end. Otherwise,
// and whenever the write does not complete at once, it writes the ordinary
// way, with the connection's own errors. An ended wait is not an error: the
// read that follows reports what ended it.
func (c *Conn) FlushAwait() error {
	if c.raw == nil || c.cw.wrote || c.W.Buffered() == 0 {
		return c.W.Flush()
	}
	c.cw.awaiting = true
	err := c.W.Flush()
	c.cw.awaiting = false
	return err
}

// writeAndAwait writes p with one write system call inside a read-readiness
// wait (RawConn.Read arms it before calling back), then waits. Its errors
// are the connection Write's, wrapped the same way. What the system call
// did not write for want of room is written with the connection's Write,
// which waits for room.
func (c *Conn) writeAndAwait(p []byte) (int, error) {
	var (
		n     int
		werr  error
		first = true
	)
	_ = c.raw.Read(func(fd uintptr) bool {
		if !first {
			return true // readable, or woken: the read that follows tells
		}
		first = false
		for n < len(p) {
			m, err := poolSysWrite(syscall.Write, fd, p[n:])
			if m > 0 {
				n += m
			}
			switch {
			case err == syscall.EINTR:
			case err != nil && !poolWouldBlock(err):
				werr = err
				return true
			case err != nil || m <= 0:
				return true
			}
		}
		if c.testArmed != nil {
			c.testArmed()
		}
		return false
	})
	if werr != nil {
		return n, &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	}
	if n < len(p) {
		m, err := c.Conn.Write(p[n:])
		return n + m, err
	}
	return n, nil
}

// poolSysWrite calls write on descriptor fd (see poolSysRead).
func poolSysWrite[FD ~int | ~uintptr](write func(FD, []byte) (int, error), fd uintptr, p []byte) (int, error) {
	return write(FD(fd), p)
}
