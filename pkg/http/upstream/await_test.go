package upstream

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// awaitRequest is a request head small enough for W's buffer.
const awaitRequest = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// awaitReturned waits for FlushAwait's result on done and fails the test
// on an error, or with stuck if it does not come.
func awaitReturned(t *testing.T, done <-chan error, stuck string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal("FlushAwait:", err)
		}
	case <-time.After(poolWaitTimeout):
		t.Fatal(stuck)
	}
}

// TestFlushAwait: FlushAwait writes the request and returns once there is
// something to read, but only when the whole request was in W (else it is
// a plain Flush, which must not wait for an answer that may never come).
func TestFlushAwait(t *testing.T) {
	poolVerifyNone(t)
	tests := []struct {
		name      string
		before    int  // bytes written through W before the last request bytes, beyond its buffer
		noRaw     bool // a connection without a descriptor
		wantArmed bool
	}{
		{name: "whole request buffered", wantArmed: true},
		{name: "part of the request already written", before: 2 * poolBufSize},
		{name: "no descriptor", noRaw: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := poolStartServer(t)
			p := &Pool{Addr: srv.ln.Addr().String()}
			c := poolGet(t, p, false)
			defer p.Discard(c)
			peer := srv.next(t)
			if tc.noRaw {
				c.raw = nil
			}
			armed := make(chan struct{}, 1)
			var held bool // a buffer was held during the wait
			c.testArmed = func() {
				held = c.R != nil || c.W != nil || c.awaitBuf != nil
				armed <- struct{}{}
			}

			c.Begin()
			want := strings.Repeat("x", tc.before) + awaitRequest
			c.W.WriteString(want)
			done := make(chan error, 1)
			go func() { done <- c.FlushAwait() }()

			got := make([]byte, len(want))
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != want {
				t.Fatalf("peer read %q, %v; want the request", got, err)
			}
			if tc.wantArmed {
				select {
				case <-armed:
				case err := <-done:
					t.Fatalf("FlushAwait returned (%v) before any response", err)
				case <-time.After(poolWaitTimeout):
					t.Fatal("FlushAwait never waited")
				}
				peer.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			}
			awaitReturned(t, done, "FlushAwait did not return")
			select {
			case <-armed:
				if !tc.wantArmed {
					t.Fatal("FlushAwait waited for a response")
				}
			default:
			}
			if tc.wantArmed && !tc.noRaw && c.alive() {
				t.Error("FlushAwait returned before the response was readable")
			}
			if held {
				t.Error("a buffer was held during the wait")
			}
			if c.R == nil || c.W == nil || c.W.Buffered() != 0 {
				t.Errorf("after FlushAwait: R %p, W %p (want both, W empty)", c.R, c.W)
			}
		})
	}
}

// TestFlushAwaitDeadline: a deadline that passes during the wait ends it
// without an error; the read that follows reports the timeout, as a read
// without FlushAwait would.
func TestFlushAwaitDeadline(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	c := poolGet(t, p, false)
	defer p.Discard(c)
	srv.next(t)
	armed := make(chan struct{}, 1)
	c.testArmed = func() { armed <- struct{}{} }
	c.Begin()
	c.W.WriteString(awaitRequest)
	done := make(chan error, 1)
	go func() { done <- c.FlushAwait() }()
	select {
	case <-armed:
	case <-time.After(poolWaitTimeout):
		t.Fatal("FlushAwait never waited")
	}
	c.SetDeadline(proxyPast)
	awaitReturned(t, done, "the deadline did not end the wait")
	if _, err := c.R.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after the wait: %v, want a timeout", err)
	}
}

// TestFlushAwaitWriteErrors: a write the peer refused fails FlushAwait with
// the error the connection's own Write gives in the same state.
func TestFlushAwaitWriteErrors(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	// reset returns a connection whose peer has reset it, the reset seen.
	reset := func() *Conn {
		c := poolGet(t, p, false)
		peer := srv.next(t).(*net.TCPConn)
		peer.SetLinger(0)
		peer.Close()
		poolWaitReadable(t, c)
		return c
	}
	a, b := reset(), reset()
	defer p.Discard(a)
	defer p.Discard(b)

	a.Begin()
	a.W.WriteString(awaitRequest)
	gotErr := a.FlushAwait()
	_, wantErr := b.Conn.Write([]byte(awaitRequest))

	if n := a.W.Buffered(); n != len(awaitRequest) {
		t.Errorf("W holds %d bytes after the failed FlushAwait, want the %d not written", n, len(awaitRequest))
	}
	var got, want *net.OpError
	if !errors.As(gotErr, &got) || !errors.As(wantErr, &want) {
		t.Fatalf("FlushAwait: %v; Write: %v; want *net.OpError from both", gotErr, wantErr)
	}
	var gotNo, wantNo syscall.Errno
	errors.As(got, &gotNo)
	errors.As(want, &wantNo)
	if got.Op != want.Op || got.Net != want.Net || gotNo != wantNo || gotNo == 0 ||
		got.Source.String() != a.LocalAddr().String() || got.Addr.String() != a.RemoteAddr().String() {
		t.Errorf("FlushAwait error %#v (%v), want one like Write's %#v (%v)", got, gotErr, want, wantErr)
	}
}
