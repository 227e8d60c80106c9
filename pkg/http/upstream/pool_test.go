package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	clocktesting "k8s.io/utils/clock/testing"
)

// poolWaitTimeout bounds every wait so that a broken pool fails a test
// instead of hanging it. It is a failure guard, not a timing device.
const poolWaitTimeout = 10 * time.Second

// poolServer is a loopback listener that accepts connections and neither
// reads nor writes: the tests drive the server side themselves.
type poolServer struct {
	ln       net.Listener
	accepted chan net.Conn // each accepted connection, while there is room

	mu    sync.Mutex
	conns []net.Conn
}

// poolStartServer starts a poolServer; cleanup closes the listener, waits
// for its goroutine and closes every connection it accepted.
func poolStartServer(tb testing.TB) *poolServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &poolServer{ln: ln, accepted: make(chan net.Conn, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			select {
			case s.accepted <- c:
			default:
			}
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// next returns the server side of the next accepted connection.
func (s *poolServer) next(tb testing.TB) net.Conn {
	tb.Helper()
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(poolWaitTimeout):
		tb.Fatal("timed out waiting for a connection")
		return nil
	}
}

// poolCountDials returns a dialer that counts its dials in n.
func poolCountDials(n *atomic.Int32) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// poolVerifyNone checks, after every other cleanup of the test, that no
// goroutine was left behind.
func poolVerifyNone(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// poolTestClock is a fake clock at a fixed start.
func poolTestClock() *clocktesting.FakePassiveClock {
	return clocktesting.NewFakePassiveClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// poolAdvance moves clk forward by d.
func poolAdvance(clk *clocktesting.FakePassiveClock, d time.Duration) {
	clk.SetTime(clk.Now().Add(d))
}

// poolGet calls p.Get and fails the test on error or on an unexpected
// reused.
func poolGet(tb testing.TB, p *Pool, wantReused bool) *Conn {
	tb.Helper()
	c, reused, err := p.Get(context.Background())
	if err != nil {
		tb.Fatal("Get:", err)
	}
	if reused != wantReused {
		tb.Fatalf("Get: reused = %v, want %v", reused, wantReused)
	}
	return c
}

// poolIsClosed says, without reading, whether c was closed on our side.
func poolIsClosed(c *Conn) bool {
	return errors.Is(c.Conn.SetDeadline(time.Time{}), net.ErrClosed)
}

// poolIdle is the number of idle connections in p.
func poolIdle(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// poolWaitReadable blocks until c's descriptor has something to read (data,
// EOF or an error), consuming at most one byte. It lets a test know the
// peer's close or data has arrived before it calls Get.
func poolWaitReadable(t *testing.T, c *Conn) {
	t.Helper()
	if c.raw == nil {
		t.Fatal("connection has no descriptor")
	}
	var buf [1]byte
	wait := func(fd uintptr) bool {
		_, err := poolSysRead(syscall.Read, fd, buf[:])
		return !poolWouldBlock(err) && err != syscall.EINTR
	}
	c.Conn.SetReadDeadline(time.Now().Add(poolWaitTimeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	if err := c.raw.Read(wait); err != nil {
		t.Fatal("waiting for readability:", err)
	}
}

func TestPoolReuseLIFO(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	var dials atomic.Int32
	p := &Pool{Addr: srv.ln.Addr().String(), Dial: poolCountDials(&dials)}
	defer p.CloseIdle()

	a, b, c := poolGet(t, p, false), poolGet(t, p, false), poolGet(t, p, false)
	p.Put(a)
	p.Put(b)
	p.Put(c)
	for i, want := range []*Conn{c, b, a} {
		if got := poolGet(t, p, true); got != want {
			t.Errorf("Get #%d returned connection %p, want %p (LIFO)", i, got, want)
		}
	}
	if n := dials.Load(); n != 3 {
		t.Errorf("%d dials, want 3", n)
	}
	p.Put(a)
	p.Put(b)
	p.Put(c)
}

func TestPoolMaxIdle(t *testing.T) {
	cases := []struct {
		name     string
		maxIdle  int
		put      int
		wantIdle int
	}{
		{name: "limit 2 of 3", maxIdle: 2, put: 3, wantIdle: 2},
		{name: "limit 1 of 1", maxIdle: 1, put: 1, wantIdle: 1},
		{name: "zero means 1000", maxIdle: 0, put: 3, wantIdle: 3},
		{name: "negative means 1000", maxIdle: -1, put: 3, wantIdle: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			srv := poolStartServer(t)
			p := &Pool{Addr: srv.ln.Addr().String(), MaxIdle: tc.maxIdle}
			defer p.CloseIdle()

			conns := make([]*Conn, tc.put)
			for i := range conns {
				conns[i] = poolGet(t, p, false)
			}
			for _, c := range conns {
				p.Put(c)
			}
			if n := poolIdle(p); n != tc.wantIdle {
				t.Errorf("%d idle, want %d", n, tc.wantIdle)
			}
			// The first ones given back are kept; the rest are closed.
			for i, c := range conns {
				if want := i >= tc.wantIdle; poolIsClosed(c) != want {
					t.Errorf("connection %d closed = %v, want %v", i, !want, want)
				}
			}
		})
	}
	if DefaultMaxIdle != 1000 {
		t.Errorf("DefaultMaxIdle = %d, want 1000", DefaultMaxIdle)
	}
}

func TestPoolIdleTimeout(t *testing.T) {
	cases := []struct {
		name        string
		timeout     time.Duration
		idle        time.Duration
		wantReused  bool
		wantExpired bool
	}{
		{name: "fresh", idle: 0, wantReused: true},
		{name: "default 90s reached", idle: 90 * time.Second, wantReused: true},
		{name: "default 90s passed", idle: 90*time.Second + 1, wantExpired: true},
		{name: "1s reached", timeout: time.Second, idle: time.Second, wantReused: true},
		{name: "1s passed", timeout: time.Second, idle: time.Second + 1, wantExpired: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			srv := poolStartServer(t)
			clk := poolTestClock()
			p := &Pool{Addr: srv.ln.Addr().String(), IdleTimeout: tc.timeout, Clock: clk}
			defer p.CloseIdle()

			old := poolGet(t, p, false)
			p.Put(old)
			poolAdvance(clk, tc.idle)
			c := poolGet(t, p, tc.wantReused)
			defer p.Put(c)
			if (c == old) != tc.wantReused {
				t.Errorf("got the idle connection = %v, want %v", c == old, tc.wantReused)
			}
			if poolIsClosed(old) != tc.wantExpired {
				t.Errorf("idle connection closed = %v, want %v", !tc.wantExpired, tc.wantExpired)
			}
		})
	}
}

// TestPoolPutClosesExpired checks that Put closes the oldest idle
// connections once expired, which LIFO reuse alone would never reach.
func TestPoolPutClosesExpired(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	clk := poolTestClock()
	p := &Pool{Addr: srv.ln.Addr().String(), IdleTimeout: time.Minute, Clock: clk}
	defer p.CloseIdle()

	a, b, c := poolGet(t, p, false), poolGet(t, p, false), poolGet(t, p, false)
	p.Put(a) // t = 0
	p.Put(b) // t = 0
	poolAdvance(clk, 30*time.Second)
	p.Put(c) // t = 30s
	poolAdvance(clk, 30*time.Second+1)
	// a and b have expired; c has not. Get takes c, and Put sweeps a and b.
	if got := poolGet(t, p, true); got != c {
		t.Fatalf("Get returned %p, want the newest %p", got, c)
	}
	if poolIsClosed(a) || poolIsClosed(b) {
		t.Error("Get closed idle connections it did not reach")
	}
	p.Put(c)
	if !poolIsClosed(a) || !poolIsClosed(b) {
		t.Error("Put left expired connections open")
	}
	if poolIsClosed(c) {
		t.Error("Put closed the connection given back")
	}
	if n := poolIdle(p); n != 1 {
		t.Errorf("%d idle, want 1", n)
	}
}

func TestPoolPeerClosedIdle(t *testing.T) {
	if !poolCanProbe {
		t.Skip("no liveness probe on this platform")
	}
	cases := []struct {
		name string
		peer func(t *testing.T, s net.Conn)
	}{
		{name: "close (FIN)", peer: func(t *testing.T, s net.Conn) { s.Close() }},
		{name: "reset (RST)", peer: func(t *testing.T, s net.Conn) {
			s.(*net.TCPConn).SetLinger(0)
			s.Close()
		}},
		{name: "unasked data", peer: func(t *testing.T, s net.Conn) {
			// Two bytes in one write: poolWaitReadable consumes the first.
			if _, err := s.Write([]byte("HT")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			srv := poolStartServer(t)
			var dials atomic.Int32
			p := &Pool{Addr: srv.ln.Addr().String(), Dial: poolCountDials(&dials)}
			defer p.CloseIdle()

			old := poolGet(t, p, false)
			p.Put(old)
			tc.peer(t, srv.next(t))
			poolWaitReadable(t, old)

			c := poolGet(t, p, false)
			defer p.Put(c)
			if c == old {
				t.Fatal("Get handed out the broken idle connection")
			}
			if !poolIsClosed(old) {
				t.Error("broken idle connection left open")
			}
			if n := dials.Load(); n != 2 {
				t.Errorf("%d dials, want 2", n)
			}
		})
	}
}

// TestPoolGetReplayableUnchecked checks which idle connections
// GetReplayable hands out without the liveness check: those given back
// less than Unchecked ago, and no others; Get always checks.
func TestPoolGetReplayableUnchecked(t *testing.T) {
	if !poolCanProbe {
		t.Skip("no liveness probe on this platform")
	}
	const unchecked = time.Millisecond
	cases := []struct {
		name        string
		idle        time.Duration
		replayable  bool
		wantChecked bool
	}{
		{name: "replayable, just given back", idle: 0, replayable: true, wantChecked: false},
		{name: "replayable, within the window", idle: unchecked - 1, replayable: true, wantChecked: false},
		{name: "replayable, at the window's end", idle: unchecked, replayable: true, wantChecked: true},
		{name: "replayable, long idle", idle: time.Second, replayable: true, wantChecked: true},
		{name: "not replayable, just given back", idle: 0, replayable: false, wantChecked: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			srv := poolStartServer(t)
			clk := poolTestClock()
			var dials atomic.Int32
			p := &Pool{Addr: srv.ln.Addr().String(), Dial: poolCountDials(&dials), Clock: clk, Unchecked: unchecked}
			defer p.CloseIdle()

			old := poolGet(t, p, false)
			p.Put(old)
			// The peer closes; the check, if made, sees it.
			srv.next(t).Close()
			poolWaitReadable(t, old)
			poolAdvance(clk, tc.idle)

			get := p.Get
			if tc.replayable {
				get = p.GetReplayable
			}
			c, reused, err := get(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Discard(c)
			if checked := c != old; checked != tc.wantChecked {
				t.Errorf("liveness checked = %v, want %v", checked, tc.wantChecked)
			}
			if reused != !tc.wantChecked {
				t.Errorf("reused = %v, want %v", reused, !tc.wantChecked)
			}
			if tc.wantChecked && !poolIsClosed(old) {
				t.Error("the closed idle connection was left open")
			}
		})
	}
}

// TestPoolProbeHealthy checks that the probe neither rejects nor consumes
// anything from a healthy connection.
func TestPoolProbeHealthy(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	c := poolGet(t, p, false)
	s := srv.next(t)
	p.Put(c)
	for range 3 {
		c = poolGet(t, p, true)
		p.Put(c)
	}
	c = poolGet(t, p, true)
	defer p.Put(c)
	if _, err := s.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	c.Conn.SetReadDeadline(time.Now().Add(poolWaitTimeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	got := make([]byte, 2)
	if _, err := c.R.Read(got[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.R.Read(got[1:]); err != nil {
		t.Fatal(err)
	}
	if string(got) != "ok" {
		t.Errorf("read %q after probes, want %q", got, "ok")
	}
}

func TestPoolCloseIdle(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	a, b, inFlight := poolGet(t, p, false), poolGet(t, p, false), poolGet(t, p, false)
	p.Put(a)
	p.Put(b)
	p.CloseIdle()
	if !poolIsClosed(a) || !poolIsClosed(b) {
		t.Error("CloseIdle left idle connections open")
	}
	if n := poolIdle(p); n != 0 {
		t.Errorf("%d idle after CloseIdle, want 0", n)
	}
	// A request in flight at CloseIdle does not refill the pool...
	p.Put(inFlight)
	if !poolIsClosed(inFlight) || poolIdle(p) != 0 {
		t.Error("Put after CloseIdle kept the connection")
	}
	// ...until the next Get, after which connections are kept again.
	c := poolGet(t, p, false)
	p.Put(c)
	if poolIsClosed(c) || poolIdle(p) != 1 {
		t.Error("Put after a new Get did not keep the connection")
	}
}

func TestPoolDiscard(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	c := poolGet(t, p, false)
	s := srv.next(t)
	p.Discard(c)
	if !poolIsClosed(c) {
		t.Error("Discard left the connection open")
	}
	s.SetReadDeadline(time.Now().Add(poolWaitTimeout))
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("server read %d, %v; want EOF", n, err)
	}
	if c2 := poolGet(t, p, false); c2 == c {
		t.Error("Get returned the discarded connection")
	} else {
		p.Put(c2)
	}
}

// TestPoolPutInDoubt checks that Put closes a connection with bytes left in
// its buffers instead of keeping it.
// An idle connection holds no buffers; one handed out has its own, empty,
// reading and writing its connection; Discard gives them back too.
func TestPoolBuffersOnlyInUse(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	a := poolGet(t, p, false)
	peer := srv.next(t)
	if a.R == nil || a.W == nil {
		t.Fatal("a new connection has no buffers")
	}
	p.Put(a)
	if a.R != nil || a.W != nil {
		t.Fatal("an idle connection holds its buffers")
	}
	b := poolGet(t, p, true)
	if b != a || b.R == nil || b.W == nil || b.R.Buffered() != 0 || b.W.Buffered() != 0 {
		t.Fatalf("reused connection: same %v, buffers %v %v", b == a, b.R, b.W)
	}
	// The buffers are the connection's: a write reaches the peer and the
	// peer's answer is read.
	b.W.WriteString("ping")
	if err := b.W.Flush(); err != nil {
		t.Fatal(err)
	}
	peer.SetDeadline(time.Now().Add(poolWaitTimeout))
	got := make([]byte, 4)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "ping" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	peer.Write([]byte("pong"))
	b.Conn.SetReadDeadline(time.Now().Add(poolWaitTimeout))
	if line, err := b.R.Peek(4); err != nil || string(line) != "pong" {
		t.Fatalf("read %q, %v", line, err)
	}
	b.R.Discard(4)
	b.Conn.SetReadDeadline(time.Time{})
	p.Discard(b)
	if b.R != nil || b.W != nil {
		t.Fatal("a discarded connection holds its buffers")
	}
}

func TestPoolPutInDoubt(t *testing.T) {
	cases := []struct {
		name  string
		dirty func(t *testing.T, c *Conn, s net.Conn)
	}{
		{name: "unread response bytes", dirty: func(t *testing.T, c *Conn, s net.Conn) {
			s.Write([]byte("xy"))
			c.Conn.SetReadDeadline(time.Now().Add(poolWaitTimeout))
			defer c.Conn.SetReadDeadline(time.Time{})
			if _, err := c.R.Peek(2); err != nil { // both bytes buffered
				t.Fatal(err)
			}
			if _, err := c.R.ReadByte(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "unflushed request", dirty: func(t *testing.T, c *Conn, s net.Conn) {
			c.W.WriteString("GET / HTTP/1.1\r\n")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			srv := poolStartServer(t)
			p := &Pool{Addr: srv.ln.Addr().String()}
			defer p.CloseIdle()

			c := poolGet(t, p, false)
			tc.dirty(t, c, srv.next(t))
			p.Put(c)
			if !poolIsClosed(c) || poolIdle(p) != 0 {
				t.Error("Put kept a connection in doubt")
			}
		})
	}
}

func TestPoolPutTwicePanics(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	c := poolGet(t, p, false)
	p.Put(c)
	defer func() {
		if recover() == nil {
			t.Error("second Put did not panic")
		}
		if n := poolIdle(p); n != 1 {
			t.Errorf("%d idle, want 1", n)
		}
	}()
	p.Put(c)
}

func TestPoolDialErrors(t *testing.T) {
	// A port nothing listens on: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	errDial := errors.New("dial failed")

	cases := []struct {
		name    string
		addr    string
		dial    func(ctx context.Context, network, addr string) (net.Conn, error)
		wantErr error
	}{
		{name: "refused, default dialer", addr: closedAddr, wantErr: syscall.ECONNREFUSED},
		{name: "custom dialer error", addr: "upstream:8080", wantErr: errDial,
			dial: func(_ context.Context, network, addr string) (net.Conn, error) {
				if network != "tcp" || addr != "upstream:8080" {
					return nil, errors.New("dialed " + network + " " + addr)
				}
				return nil, errDial
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			poolVerifyNone(t)
			p := &Pool{Addr: tc.addr, Dial: tc.dial}
			c, reused, err := p.Get(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Get error = %v, want %v", err, tc.wantErr)
			}
			if c != nil || reused {
				t.Errorf("Get = %v, %v with an error", c, reused)
			}
			if c, err := p.GetFresh(context.Background()); !errors.Is(err, tc.wantErr) || c != nil {
				t.Errorf("GetFresh = %v, %v; want %v", c, err, tc.wantErr)
			}
		})
	}
}

func TestPoolDialCanceled(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	// blockingDial reports on started, then waits for ctx to end.
	blockingDial := func(started chan<- struct{}) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	cases := []struct {
		name    string
		blocked bool // dial with blockingDial and cancel once it started; else cancel first and use the default dialer
	}{
		{name: "canceled while dialing", blocked: true},
		{name: "canceled before dialing, default dialer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pool{Addr: srv.ln.Addr().String()}
			ctx, cancel := context.WithTimeout(context.Background(), poolWaitTimeout)
			defer cancel()
			if tc.blocked {
				started := make(chan struct{})
				p.Dial = blockingDial(started)
				go func() {
					<-started
					cancel()
				}()
			} else {
				cancel()
			}
			c, _, err := p.Get(ctx)
			if !errors.Is(err, context.Canceled) || c != nil {
				t.Errorf("Get = %v, %v; want context.Canceled", c, err)
			}
		})
	}
}

func TestPoolGetFresh(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String()}
	defer p.CloseIdle()

	idle := poolGet(t, p, false)
	p.Put(idle)
	c, err := p.GetFresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c == idle || poolIdle(p) != 1 {
		t.Error("GetFresh took the idle connection")
	}
	p.Put(c)
	if got := poolGet(t, p, true); got != c {
		t.Error("the fresh connection was not pooled on Put")
	} else {
		p.Put(got)
	}
}

// TestPoolConcurrent has goroutines share a pool; -race checks the
// locking, and each connection must be held by one goroutine at a time.
func TestPoolConcurrent(t *testing.T) {
	poolVerifyNone(t)
	srv := poolStartServer(t)
	p := &Pool{Addr: srv.ln.Addr().String(), MaxIdle: 4}
	defer p.CloseIdle()

	const workers, rounds = 8, 200
	var (
		held    sync.Map // *Conn -> *atomic.Bool
		wg      sync.WaitGroup
		doubled atomic.Int32
	)
	for range workers {
		wg.Go(func() {
			for i := range rounds {
				c, _, err := p.Get(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				flag, _ := held.LoadOrStore(c, new(atomic.Bool))
				if !flag.(*atomic.Bool).CompareAndSwap(false, true) {
					doubled.Add(1)
				}
				flag.(*atomic.Bool).Store(false)
				if i%10 == 9 {
					p.Discard(c)
				} else {
					p.Put(c)
				}
			}
		})
	}
	wg.Wait()
	if n := doubled.Load(); n != 0 {
		t.Errorf("%d times a connection was held by two goroutines", n)
	}
	if n := poolIdle(p); n > 4 {
		t.Errorf("%d idle, want at most MaxIdle 4", n)
	}
}

// poolNoProbeConn hides the descriptor of a connection, so that the pool
// cannot probe it: the benchmarks' baseline.
type poolNoProbeConn struct{ net.Conn }

// poolBenchPool returns a pool of loopback connections, probed or not.
func poolBenchPool(b *testing.B, probe bool) *Pool {
	srv := poolStartServer(b)
	p := &Pool{Addr: srv.ln.Addr().String()}
	if !probe {
		p.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			return poolNoProbeConn{c}, err
		}
	}
	b.Cleanup(p.CloseIdle)
	return p
}

// poolBenchCases are the benchmarks' variants: with the liveness probe
// (tcp) and without (no-probe).
var poolBenchCases = []struct {
	name  string
	probe bool
}{{"tcp", true}, {"no-probe", false}}

// BenchmarkPoolGetPut measures Get+Put of a pooled connection.
func BenchmarkPoolGetPut(b *testing.B) {
	for _, bc := range poolBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			p := poolBenchPool(b, bc.probe)
			p.Put(poolGet(b, p, false))
			b.ReportAllocs()
			for b.Loop() {
				c, reused, err := p.Get(context.Background())
				if err != nil || !reused {
					b.Fatal(reused, err)
				}
				p.Put(c)
			}
		})
	}
}

// BenchmarkPoolGetPutParallel measures Get+Put from all Ps at once, each
// goroutine on its own connection (contention on the pool's mutex).
func BenchmarkPoolGetPutParallel(b *testing.B) {
	for _, bc := range poolBenchCases {
		b.Run(bc.name, func(b *testing.B) {
			p := poolBenchPool(b, bc.probe)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, _, err := p.Get(context.Background())
					if err != nil {
						b.Error(err)
						return
					}
					p.Put(c)
				}
			})
		})
	}
}

// BenchmarkPoolProbe measures the liveness probe alone.
func BenchmarkPoolProbe(b *testing.B) {
	srv := poolStartServer(b)
	p := &Pool{Addr: srv.ln.Addr().String()}
	b.Cleanup(p.CloseIdle)
	c := poolGet(b, p, false)
	defer p.Put(c)
	if c.raw == nil {
		b.Skip("no liveness probe on this platform")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !c.alive() {
			b.Fatal("healthy connection reported dead")
		}
	}
}
