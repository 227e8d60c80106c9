package h1server

import (
	"io"
	"net/http"
	"sync"
)

// body is a fast-path request body of a declared length, read from the
// connection's buffer, with net/http's server-side semantics: a short body
// is io.ErrUnexpectedEOF, the final bytes come with io.EOF, Read after Close
// is http.ErrBodyReadAfterClose, and Close reads up to maxPostHandlerRead
// of what is left so that the connection can serve the next request (more
// than that closes it).
type body struct {
	c         *conn
	remaining int64
	closing   bool // the request asked to close the connection

	mu         sync.Mutex
	sawEOF     bool
	closed     bool
	earlyClose bool // closed with more than maxPostHandlerRead left
}

var _ io.ReadCloser = (*body)(nil)

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (n int, err error) {
	if b.sawEOF {
		return 0, io.EOF
	}
	if b.remaining <= 0 {
		b.hitEOF()
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err = b.c.br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		b.hitEOF()
		if b.remaining > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil && n > 0 && b.remaining == 0 {
		err = io.EOF
		b.hitEOF()
	}
	return n, err
}

func (b *body) hitEOF() {
	if !b.sawEOF {
		b.sawEOF = true
		b.c.bodyDone()
	}
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	var err error
	switch {
	case b.sawEOF:
	case b.closing:
	case b.remaining > maxPostHandlerRead:
		b.earlyClose = true
	default:
		var n int64
		n, err = io.CopyN(io.Discard, lockedBody{b}, maxPostHandlerRead)
		if err == io.EOF {
			err = nil
		}
		if n == maxPostHandlerRead {
			b.earlyClose = true
		}
	}
	b.closed = true
	return err
}

// closedEarly reports whether Close left part of the body unread.
func (b *body) closedEarly() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.earlyClose
}

// lockedBody reads b with its lock held.
type lockedBody struct{ b *body }

func (l lockedBody) Read(p []byte) (int, error) {
	if l.b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return l.b.readLocked(p)
}
