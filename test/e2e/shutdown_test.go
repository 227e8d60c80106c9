package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// exitTimeout bounds how long queue-proxy may take to exit after its drain
// and shutdown steps could have finished.
const exitTimeout = 30 * time.Second

// TestShutdownUnderLoad sends SIGTERM while steady traffic and a few long
// requests are in flight. Traffic goes on for a while, as it does until the
// load balancers notice the pod is going, then stops. No request may fail,
// the long ones included, and queue-proxy must exit 0 (CONTRACT.md §6.3).
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	// The quiet period is long enough that a stalled machine does not end
	// the drain while the load balancer still sends traffic.
	s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_DRAIN_QUIET_PERIOD": "3s"}})
	h2 := newH2CClient(t)

	const (
		workers     = 8
		h2cWorkers  = 2               // of the workers, the ones that speak h2c
		trafficTail = 3 * time.Second // traffic after SIGTERM
		// Long requests are still running when the drain ends (0.5 s +
		// trafficTail + the quiet period), so the server shutdown has to
		// wait for them.
		longSleep = 8 * time.Second
		longCount = 3
	)

	var (
		stop          atomic.Bool
		sigtermSent   atomic.Bool
		ok, afterTerm atomic.Int64
		failMu        sync.Mutex
		failures      []string
		wg            sync.WaitGroup
	)
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // before the processes are killed
	fail := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}

	longDone := make(chan string, longCount)
	for range longCount {
		wg.Go(func() {
			url := s.url(fmt.Sprintf("/sleep?ms=%d", longSleep.Milliseconds()))
			r, err := fetch(s.c, get(url))
			switch {
			case err != nil:
				longDone <- err.Error()
			case r.code != http.StatusOK:
				longDone <- fmt.Sprintf("%d %q", r.code, r.body)
			default:
				longDone <- ""
			}
		})
	}
	for w := range workers {
		c := s.c
		if w < h2cWorkers {
			c = h2
		}
		wg.Go(func() {
			for i := 0; i < 100000 && !stop.Load(); i++ {
				r, err := fetch(c, get(s.url("/sleep?ms=10")))
				switch {
				case err != nil:
					fail("worker %d: %v", w, err)
				case r.code != http.StatusOK || r.body != "slept 10 ms\n":
					fail("worker %d: %d %q", w, r.code, r.body)
				default:
					ok.Add(1)
					if sigtermSent.Load() {
						afterTerm.Add(1)
					}
				}
			}
		})
	}

	// Let traffic settle and the long requests start, then terminate.
	time.Sleep(500 * time.Millisecond)
	s.qp.Signal(t, syscall.SIGTERM)
	sigtermSent.Store(true)

	// The drain shows on the probes, which is how load balancers notice.
	eventually(t, 10*time.Second, 20*time.Millisecond, "probes answer 503 while draining", func() (bool, string) {
		r, err := fetch(s.c, probeRequest(s.url("/"), activatorUA, "queue"))
		return err == nil && isShuttingDown(r), fmt.Sprint(r.code, " ", r.body, " ", err)
	})

	time.Sleep(trafficTail)
	stop.Store(true)
	wg.Wait()
	close(longDone)

	code := s.qp.WaitExit(t, exitTimeout)
	if code != 0 {
		t.Errorf("queue-proxy exit status %d, want 0", code)
	}
	for msg := range longDone {
		if msg != "" {
			t.Errorf("long request failed: %s", msg)
		}
	}
	for _, f := range failures {
		t.Errorf("request failed: %s", f)
	}
	if ok.Load() == 0 || afterTerm.Load() == 0 {
		t.Errorf("%d requests succeeded, %d after SIGTERM; want traffic before and after", ok.Load(), afterTerm.Load())
	}
	t.Logf("%d requests succeeded, %d of them after SIGTERM", ok.Load(), afterTerm.Load())
	if !strings.Contains(s.qp.Stderr(), "Shutdown complete") {
		t.Error("queue-proxy did not log \"Shutdown complete\"")
	}
}

// TestWebsocketSurvivesDrain: a websocket keeps working through the drain
// and after the servers have shut down (http.Server.Shutdown does not wait
// for hijacked connections); queue-proxy then waits for it, up to
// QP_HIJACK_DRAIN_TIMEOUT (CONTRACT.md §3.10, §6.3 step 4).
func TestWebsocketSurvivesDrain(t *testing.T) {
	t.Parallel()

	// untilShutdown opens a websocket, sends SIGTERM and returns once the
	// main listener has closed, having checked the echo on the way.
	untilShutdown := func(t *testing.T, s *stack) *websocket.Conn {
		ws := dialWebsocket(t, s.ports.Main)
		echo(t, ws, websocket.TextMessage, []byte("before SIGTERM"))
		s.qp.Signal(t, syscall.SIGTERM)
		eventually(t, 10*time.Second, 20*time.Millisecond, "probes answer 503 while draining", func() (bool, string) {
			r, err := fetch(s.c, probeRequest(s.url("/"), kubeletUA, "queue"))
			return err == nil && isShuttingDown(r), fmt.Sprint(r.code, " ", r.body, " ", err)
		})
		echo(t, ws, websocket.TextMessage, []byte("while draining"))
		eventually(t, 20*time.Second, 20*time.Millisecond, "the main port closes (server shutdown)", func() (bool, string) {
			return dialRefused(s.ports.Main), "still accepting connections"
		})
		echo(t, ws, websocket.TextMessage, []byte("after server shutdown"))
		if s.qp.Exited() {
			t.Fatalf("queue-proxy exited (status %d) with a websocket open", s.qp.Code())
		}
		return ws
	}

	t.Run("closed by the client", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_HIJACK_DRAIN_TIMEOUT": "60s"}})
		ws := untilShutdown(t, s)
		time.Sleep(1500 * time.Millisecond) // more than one hijack-drain poll
		echo(t, ws, websocket.TextMessage, []byte("still open"))
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second)) //nolint:errcheck // best effort
		ws.Close()
		// Far less than the 60 s hijack timeout: it exits because the
		// websocket closed.
		if code := s.qp.WaitExit(t, exitTimeout); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if strings.Contains(s.qp.Stderr(), "Hijack connection drain failed") {
			t.Error("the hijack drain timed out, though the websocket was closed")
		}
	})

	t.Run("cut at the hijack drain timeout", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_HIJACK_DRAIN_TIMEOUT": "2s"}})
		ws := untilShutdown(t, s)
		if code := s.qp.WaitExit(t, exitTimeout); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if err := echoErr(ws, websocket.TextMessage, []byte("after exit")); err == nil {
			t.Error("the websocket still echoes after queue-proxy exited")
		}
		if !strings.Contains(s.qp.Stderr(), "Hijack connection drain failed") {
			t.Error("queue-proxy did not log \"Hijack connection drain failed\"")
		}
	})
}

// TestPreStop drives the user container's preStop hook, GET
// :admin/wait-for-drain (CONTRACT.md §6.2).
func TestPreStop(t *testing.T) {
	t.Parallel()

	type hookResult struct {
		r   response
		err error
		at  time.Time
	}
	callHook := func(s *stack) <-chan hookResult {
		ch := make(chan hookResult, 1)
		go func() {
			r, err := fetch(s.c, get(s.adminURL("/wait-for-drain")))
			ch <- hookResult{r, err, time.Now()}
		}()
		return ch
	}
	checkHook := func(t *testing.T, res hookResult) {
		t.Helper()
		if res.err != nil || res.r.code != http.StatusOK || res.r.body != "" {
			t.Errorf("/wait-for-drain: %d %q %v, want 200 with an empty body", res.r.code, res.r.body, res.err)
		}
	}

	t.Run("container restart without SIGTERM", func(t *testing.T) {
		t.Parallel()
		// A 30 s quiet period (Knative's): only the 1 s reset can end the hook.
		s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_DRAIN_QUIET_PERIOD": "30s"}})
		hook := callHook(s)

		// While the hook waits, queue-proxy drains: probes fail, so no new
		// traffic is routed to the restarting container...
		sawDrain := false
		var res hookResult
	wait:
		for deadline := time.Now().Add(20 * time.Second); ; {
			select {
			case res = <-hook:
				break wait
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("/wait-for-drain did not return within 20s without SIGTERM")
			}
			if isShuttingDown(s.probe(activatorUA, "queue")) {
				sawDrain = true
			}
			time.Sleep(20 * time.Millisecond)
		}
		checkHook(t, res)
		if !sawDrain {
			t.Error("probes never answered 503 \"shutting down\" while /wait-for-drain was blocked")
		}
		// ...and once it returns, the drain is cancelled and probes recover.
		eventually(t, 5*time.Second, 20*time.Millisecond, "probes recover after the hook", func() (bool, string) {
			r := s.probe(activatorUA, "queue")
			return r.code == http.StatusOK && r.body == "queue", fmt.Sprint(r.code, " ", r.body)
		})
		if r := mustFetch(t, s.c, get(s.url("/status?code=200"))); r.code != http.StatusOK {
			t.Errorf("request after the hook: %d %q", r.code, r.body)
		}
		if s.qp.Exited() {
			t.Errorf("queue-proxy exited (status %d) without SIGTERM", s.qp.Code())
		}
	})

	t.Run("pod deletion with SIGTERM", func(t *testing.T) {
		t.Parallel()
		const quiet = 4 * time.Second
		s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_DRAIN_QUIET_PERIOD": quiet.String()}})
		// Kubelet runs the preStop hook and sends SIGTERM to queue-proxy at
		// about the same time.
		hook := callHook(s)
		time.Sleep(100 * time.Millisecond)
		s.qp.Signal(t, syscall.SIGTERM)

		// Past the 1 s reset point the hook must still be blocked, and
		// requests are still served (each restarts the quiet period).
		time.Sleep(1500 * time.Millisecond)
		lastRequest := time.Now()
		if r := mustFetch(t, s.c, get(s.url("/status?code=200"))); r.code != http.StatusOK {
			t.Errorf("request while draining: %d %q", r.code, r.body)
		}
		time.Sleep(500 * time.Millisecond)
		select {
		case res := <-hook:
			t.Fatalf("/wait-for-drain returned before the drain finished: %d %q %v", res.r.code, res.r.body, res.err)
		default:
		}
		if r := s.probe(activatorUA, "queue"); !isShuttingDown(r) {
			t.Errorf("probe while draining: %d %q, want 503 \"shutting down\\n\"", r.code, r.body)
		}

		var res hookResult
		select {
		case res = <-hook:
		case <-time.After(exitTimeout):
			t.Fatal("/wait-for-drain did not return after the drain")
		}
		checkHook(t, res)
		// The drain ends a quiet period after the last request, not before.
		if waited := res.at.Sub(lastRequest); waited < quiet {
			t.Errorf("/wait-for-drain returned %v after the last request, less than the %v quiet period", waited, quiet)
		}
		if code := s.qp.WaitExit(t, exitTimeout); code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
	})
}

// TestSecondSignal: a second SIGTERM during the drain exits at once with
// status 1 (CONTRACT.md §6.1 step 2), as an impatient operator expects.
func TestSecondSignal(t *testing.T) {
	t.Parallel()
	// Knative's 30 s quiet period: only the second signal can end it soon.
	s := startStack(t, stackConfig{qpEnv: map[string]string{"QP_DRAIN_QUIET_PERIOD": "30s"}})
	s.qp.Signal(t, syscall.SIGTERM)
	eventually(t, 10*time.Second, 20*time.Millisecond, "probes answer 503 while draining", func() (bool, string) {
		r := s.probe(activatorUA, "queue")
		return isShuttingDown(r), fmt.Sprint(r.code, " ", r.body)
	})
	s.qp.Signal(t, syscall.SIGTERM)
	if code := s.qp.WaitExit(t, 10*time.Second); code != 1 {
		t.Errorf("exit status %d after the second SIGTERM, want 1", code)
	}
}
