package upstream

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// watchPair returns a proxyState, and a Conn on a loopback connection
// whose peer never writes; all closed when the test ends. The watch delay
// is d for the test.
func watchPair(t *testing.T, d time.Duration) (*proxyState, *Conn, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); peer.Close() })
	testWatchDelay.Store(int64(d))
	t.Cleanup(func() { testWatchDelay.Store(0) })
	registered := new(atomic.Int64)
	s := proxyStates.New().(*proxyState)
	s.testRegistered = func() { registered.Add(1) }
	t.Cleanup(func() {
		if s.timer != nil {
			s.timer.Stop()
		}
	})
	return s, &Conn{Conn: nc}, registered
}

// readEnds reports whether a read on c ends (with a timeout) within 5 s.
func readEnds(t *testing.T, c *Conn) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read ended with %v, want a deadline", err)
		}
	case <-time.After(5 * time.Second):
		c.Close()
		t.Fatal("the ended context did not interrupt the read")
	}
}

// An exchange that ends within the delay registers no watch and leaves
// the connection reusable.
func TestWatchFastExchangeRegistersNothing(t *testing.T) {
	s, c, registered := watchPair(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &Proxy{}
	for range 20 {
		p.watch(ctx, s, c)
		if !p.unwatch(s) {
			t.Fatal("unwatch: the connection's deadline was touched")
		}
	}
	if n := registered.Load(); n != 0 {
		t.Errorf("%d watches registered, want 0", n)
	}
}

// A longer exchange is watched after the delay, and the end of its
// context then interrupts it; the connection is not reusable.
func TestWatchSlowExchangeInterrupted(t *testing.T) {
	s, c, _ := watchPair(t, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{}
	registeredNow := make(chan struct{})
	s.testRegistered = func() { close(registeredNow) }
	p.watch(ctx, s, c)
	select {
	case <-registeredNow:
	case <-time.After(5 * time.Second):
		t.Fatal("no watch registered 5 s into the exchange")
	}
	cancel()
	readEnds(t, c)
	if p.unwatch(s) {
		t.Error("unwatch reports an untouched deadline after the watch fired")
	}
}

// A context that ends before the delay interrupts the exchange once the
// delay has passed.
func TestWatchEndBeforeDelay(t *testing.T) {
	s, c, _ := watchPair(t, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{}
	p.watch(ctx, s, c)
	cancel()
	readEnds(t, c)
	if p.unwatch(s) {
		t.Error("unwatch reports an untouched deadline after the watch fired")
	}
}

// A context already ended when the exchange starts expires the
// connection at once.
func TestWatchAlreadyEnded(t *testing.T) {
	s, c, registered := watchPair(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &Proxy{}
	p.watch(ctx, s, c)
	readEnds(t, c)
	if p.unwatch(s) {
		t.Error("unwatch reports an untouched deadline")
	}
	if registered.Load() != 0 {
		t.Error("a watch was registered")
	}
}
