package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// echoMessage is what every echoing websocket sends, again and again: a
// small text message, as chat and notification apps send.
var echoMessage = []byte("scale-bench echo: 32 bytes long.")

// wsDialer opens the benchmark's websockets with small buffers, so that
// the client's own memory stays small at thousands of websockets.
var wsDialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1 << 10, WriteBufferSize: 1 << 10}

// websockets measures tg's websocket figures on a fresh process: its
// memory idle, then holding each count of -websockets open and idle
// websockets to the backend's echo (each echoed one message when opened),
// then the CPU it spends while -echo-conns of them echo echoMessage,
// one message in flight each, for -echo-duration.
func (s *scaleBench) websockets(ctx context.Context, tg scaleTarget) error {
	c, base, err := s.startSettled(tg)
	if err != nil {
		return err
	}
	defer c.stop()
	s.res.setWSBase(tg.name, base)
	logf("  before: VmRSS %s, RssAnon %s", mib(base.rss), mib(base.anon))

	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", c.port)
	held, err := holdCounts(ctx, s, c, s.o.websockets, "idle websockets",
		func() (*websocket.Conn, error) { return openEcho(url) },
		func(p memPoint) { s.res.addWS(tg.name, p) })
	defer closeAll(held)
	if err != nil {
		return err
	}

	var e echoResult
	e.conns = s.o.echoConns
	start := time.Now()
	e.cpu, err = cpuDelta(c.cmd.Process.Pid, func() error {
		var err error
		e.messages, err = echoFor(held[:s.o.echoConns], s.o.echoDuration)
		return err
	})
	e.seconds = time.Since(start).Seconds()
	if err != nil {
		return err
	}
	s.res.setEcho(tg.name, e)
	logf("  %d websockets echoing: %.0f messages/s, %s CPU-s / 10k messages", e.conns, e.rate(), fmtCPU(e.cpuPer10k()))
	return nil
}

// openEcho opens a websocket to url and checks that it echoes.
func openEcho(url string) (*websocket.Conn, error) {
	ws, resp, err := wsDialer.Dial(url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: %s: %w", resp.Status, err)
		}
		return nil, err
	}
	if err := echoOnce(ws, time.Now().Add(10*time.Second)); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// echoOnce sends echoMessage and reads it back by deadline.
func echoOnce(ws *websocket.Conn, deadline time.Time) error {
	ws.SetWriteDeadline(deadline) //nolint:errcheck // only sets a field
	ws.SetReadDeadline(deadline)  //nolint:errcheck // see above
	if err := ws.WriteMessage(websocket.TextMessage, echoMessage); err != nil {
		return err
	}
	kind, got, err := ws.ReadMessage()
	switch {
	case err != nil:
		return err
	case kind != websocket.TextMessage || string(got) != string(echoMessage):
		return fmt.Errorf("websocket echo: got (%d, %q), want (%d, %q)", kind, got, websocket.TextMessage, echoMessage)
	}
	return nil
}

// echoFor has every websocket of wss echo messages one after another for
// d and returns how many came back.
func echoFor(wss []*websocket.Conn, d time.Duration) (int64, error) {
	var (
		n     atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	end := time.Now().Add(d)
	for _, ws := range wss {
		wg.Go(func() {
			for time.Now().Before(end) {
				if err := echoOnce(ws, end.Add(10*time.Second)); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), first
}

// echoResult is the websocket echo load's figures on one target.
type echoResult struct {
	conns    int     // websockets echoing
	messages int64   // messages echoed (each crossed the proxy twice)
	seconds  float64 // wall time
	cpu      float64 // proxy CPU-seconds
}

// rate is messages echoed per second; NaN when nothing was measured.
func (e echoResult) rate() float64 {
	if e.seconds <= 0 {
		return nan()
	}
	return float64(e.messages) / e.seconds
}

// cpuPer10k is the proxy's CPU-seconds per 10k echoed messages.
func (e echoResult) cpuPer10k() float64 {
	if e.messages <= 0 {
		return nan()
	}
	return e.cpu / float64(e.messages) * 1e4
}
