package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// openers is how many connections (or websockets) are opened at once: few
// enough that the proxy needs only a handful of upstream connections for
// them, so that what grows is the cost of the client connections.
const openers = 8

// idleConns measures the idle figures of tg: a fresh process, warmed up
// (warmUp) and left idle, then holding each count of -conns idle
// keep-alive client connections, every one of which made one request.
func (s *scaleBench) idleConns(ctx context.Context, tg scaleTarget) error {
	c, base, err := s.startSettled(tg)
	if err != nil {
		return err
	}
	defer c.stop()
	s.res.setIdle(tg.name, base)
	logf("  idle: VmRSS %s, RssAnon %s", mib(base.rss), mib(base.anon))

	held, err := holdCounts(ctx, s, c, s.o.conns, "idle connections",
		func() (net.Conn, error) { return oneRequestConn(c.port) },
		func(p memPoint) { s.res.addConns(tg.name, p) })
	closeAll(held)
	return err
}

// holdCounts opens connections with open until counts[i] are held, for
// each count in turn, and records c's settled memory at each (what says
// what they are, for the log). It returns those it holds, also on error.
func holdCounts[C io.Closer](ctx context.Context, s *scaleBench, c *child, counts []int, what string,
	open func() (C, error), record func(memPoint)) ([]C, error) {
	var held []C
	for _, n := range counts {
		more, err := openMany(ctx, n-len(held), open)
		held = append(held, more...)
		if err != nil {
			return held, err
		}
		m, err := s.settledMem(c)
		if err != nil {
			return held, err
		}
		record(memPoint{n, m})
		logf("  %6d %s: VmRSS %s, RssAnon %s", n, what, mib(m.rss), mib(m.anon))
	}
	return held, nil
}

// closeAll closes every one of cs.
func closeAll[C io.Closer](cs []C) {
	for _, c := range cs {
		c.Close()
	}
}

// startSettled starts tg (HTTP/1.1 to the backend), warms it up, lets it
// settle and returns it with its memory then; the caller stops it.
func (s *scaleBench) startSettled(tg scaleTarget) (*child, mem, error) {
	c, err := tg.start(s.backend.port, false)
	if err != nil {
		return nil, mem{}, err
	}
	if err := warmUp(c.port); err != nil {
		c.stop()
		return nil, mem{}, err
	}
	base, err := s.settledMem(c)
	if err != nil {
		c.stop()
		return nil, mem{}, err
	}
	return c, base, nil
}

// settledMem waits -settle, then reads c's memory.
func (s *scaleBench) settledMem(c *child) (mem, error) {
	time.Sleep(s.o.settle)
	return readMem(c.cmd.Process.Pid)
}

// openMany calls open n times, openers at a time, and returns what it
// opened, also when one failed (the error is then the first failure).
func openMany[T any](ctx context.Context, n int, open func() (T, error)) ([]T, error) {
	var (
		mu     sync.Mutex
		out    []T
		first  error
		wg     sync.WaitGroup
		next   = make(chan struct{})
		failed = make(chan struct{})
		once   sync.Once
	)
	for range openers {
		wg.Go(func() {
			for range next {
				v, err := open()
				mu.Lock()
				if err != nil {
					if first == nil {
						first = err
					}
					once.Do(func() { close(failed) })
				} else {
					out = append(out, v)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for range n {
		select {
		case next <- struct{}{}:
		case <-failed:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return out, first
}

// oneRequestConn dials port, sends one GET / over HTTP/1.1 keep-alive,
// reads the 200 answer to the end, and returns the connection, open and
// idle.
func oneRequestConn(port int) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := oneRequest(nc, port); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// oneRequest is oneRequestConn's exchange on nc.
func oneRequest(nc net.Conn, port int) error {
	nc.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a fresh conn
	defer nc.SetDeadline(time.Time{})                //nolint:errcheck // see above
	if _, err := fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: bench-scale\r\n\r\n", port); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 1<<10), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET /: %s", resp.Status)
	case resp.Close:
		return fmt.Errorf("GET /: the proxy closes the connection (%s)", resp.Header.Get("Connection"))
	}
	return nil
}
