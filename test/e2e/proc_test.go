package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer collects a child's output; safe for concurrent use, and bounded
// so that a chatty process cannot exhaust memory.
type logBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

const maxLog = 4 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxLog - l.b.Len(); len(p) > room {
		l.b.Write(p[:max(room, 0)])
		l.truncated = true
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[output truncated]"
	}
	return l.b.String()
}

// process is a child process owned by one test. It is killed, if still
// running, when the test ends, and its output is logged if the test failed.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdout logBuffer
	stderr logBuffer
	done   chan struct{} // closed once the process has exited
	code   int           // exit status; -1 if a signal ended it
}

// startProcess starts bin with exactly env as its environment.
func startProcess(t *testing.T, name, bin string, args, env []string) *process {
	t.Helper()
	p := &process{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	setProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait() //nolint:errcheck // the exit status is read from ProcessState
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill() //nolint:errcheck // it may exit on its own meanwhile
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("--- %s (pid %d) stderr:\n%s", name, p.cmd.Process.Pid, tail(p.stderr.String(), 32<<10))
			if out := p.stdout.String(); out != "" {
				t.Logf("--- %s stdout:\n%s", name, tail(out, 8<<10))
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

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// waitExit waits up to timeout for the process to exit and returns its
// exit status; it fails the test if the process is still running.
func (p *process) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%s still running %v later", p.name, timeout)
		return 0
	}
}

// Ports handed out in this test process, so that parallel tests never get
// the same one.
var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort returns a TCP port that is free on every interface right now
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

// envList turns m into a sorted KEY=value list.
func envList(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// baseProcessEnv is what every child inherits from the test's environment:
// only what a Go binary may want, not whatever the developer has set.
func baseProcessEnv() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	return m
}

// addrInUse reports whether a process failed because a port was taken
// between freePort and its listen (a rare race with other programs).
func addrInUse(p *process) bool {
	return strings.Contains(p.stderr.String(), "address already in use")
}
