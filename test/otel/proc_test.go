package otel

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startupTimeout bounds how long a process may take to serve; the machine
// is small and shared with other builds.
const startupTimeout = 30 * time.Second

// output is a child's stdout or stderr: safe for concurrent use, bounded.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

const maxOutput = 2 << 20

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := maxOutput - o.b.Len(); room < len(p) {
		o.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// proc is a child process owned by one test: killed when the test ends if
// it is still running, its output logged when the test failed.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr output
	done           chan struct{} // closed when the process has exited
	exitedAt       time.Time     // valid once done is closed
	code           int           // exit status; -1 when a signal ended it
}

func startProc(t *testing.T, name, bin string, args, env []string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	// The kernel kills the child if the test binary dies without running
	// its cleanups (a -timeout panic).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait() //nolint:errcheck // the status is read from ProcessState
		p.exitedAt = time.Now()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) still running 10s after SIGKILL", name, p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("--- %s stderr:\n%s", name, tail(p.stderr.String(), 24<<10))
			if s := p.stdout.String(); s != "" {
				t.Logf("--- %s stdout:\n%s", name, tail(s, 8<<10))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to timeout for the process to exit and returns its
// status; it fails the test if it is still running.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%s still running %v later", p.name, timeout)
		return 0
	}
}

// Ports handed out by this test process, so parallel tests never share one.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a TCP port free on every interface right now
// (queue-proxy listens on ":port").
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsUsed[port] {
			portsUsed[port] = true
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

// lostPortRace reports whether p failed because a port was taken between
// freePort and its listen.
func lostPortRace(p *proc) bool {
	return p.exited() && strings.Contains(p.stderr.String(), "address already in use")
}

// childEnv is what every child inherits from the test's environment: only
// what a Go program may want, not whatever OTEL_* the developer has set.
func childEnv(extra map[string]string) []string {
	m := map[string]string{}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// startApp starts the demo user container on a free port and waits until
// it serves.
func startApp(t *testing.T) (*proc, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		p := startProc(t, "app", appBin, []string{"-port", strconv.Itoa(port)}, childEnv(nil))
		err := poll(startupTimeout, func() (bool, string) {
			if p.exited() {
				return true, ""
			}
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return true, ""
		})
		if err == nil && !p.exited() {
			return p, port
		}
		if lostPortRace(p) && attempt < 3 {
			continue
		}
		t.Fatalf("the user container did not start: %v (exited: %v)", err, p.exited())
	}
}

// poll calls cond every 20 ms until it reports true or timeout passes; the
// error carries cond's last explanation.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v; last: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
