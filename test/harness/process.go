package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Process is a child process owned by one test. It is killed, if still
// running, when the test ends, and its output is logged if the test failed.
type Process struct {
	Name     string
	cmd      *exec.Cmd
	stdout   logBuffer
	stderr   logBuffer
	done     chan struct{} // closed once the process has exited
	exitedAt time.Time     // valid once done is closed
	code     int           // valid once done is closed; -1 if a signal ended it
}

// Start starts bin with exactly env as its environment.
func Start(t testing.TB, name, bin string, args, env []string) *Process {
	t.Helper()
	p := &Process{Name: name, done: make(chan struct{})}
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
		p.exitedAt = time.Now()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			p.cmd.Process.Kill() //nolint:errcheck // it may exit on its own meanwhile
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.Pid())
			}
		}
		if t.Failed() {
			t.Logf("--- %s (pid %d) stderr:\n%s", name, p.Pid(), tail(p.Stderr(), 32<<10))
			if out := p.Stdout(); out != "" {
				t.Logf("--- %s stdout:\n%s", name, tail(out, 8<<10))
			}
		}
	})
	return p
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stdout is what the process wrote to its standard output so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr is what the process wrote to its standard error so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Code is the exit status once the process has exited: -1 if a signal ended
// it, and 0 while it runs.
func (p *Process) Code() int {
	if !p.Exited() {
		return 0
	}
	return p.code
}

// ExitedAt is when the process was seen to exit; zero while it runs.
func (p *Process) ExitedAt() time.Time {
	if !p.Exited() {
		return time.Time{}
	}
	return p.exitedAt
}

// Signal sends sig to the process, failing the test if it cannot.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", p.Name, err)
	}
}

// WaitExit waits up to timeout for the process to exit and returns its
// exit status; it fails the test if the process is still running.
func (p *Process) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%s still running %v later", p.Name, timeout)
		return 0
	}
}

// LostPortRace reports whether the process failed because a port was taken
// between FreePort and its listen (a rare race with other programs).
func (p *Process) LostPortRace() bool {
	return p.Exited() && strings.Contains(p.Stderr(), "address already in use")
}
