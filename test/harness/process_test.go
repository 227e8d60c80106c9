package harness

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessExitStatusAndOutput(t *testing.T) {
	t.Parallel()
	p := startChild(t, "exit3")
	if code := p.WaitExit(t, 10*time.Second); code != 3 {
		t.Errorf("WaitExit = %d, want 3", code)
	}
	if !p.Exited() || p.Code() != 3 || p.ExitedAt().IsZero() {
		t.Errorf("after the exit: Exited %v, Code %d, ExitedAt %v", p.Exited(), p.Code(), p.ExitedAt())
	}
	if p.Stdout() != "to stdout\n" || p.Stderr() != "to stderr\n" {
		t.Errorf("stdout %q, stderr %q", p.Stdout(), p.Stderr())
	}
	if p.LostPortRace() {
		t.Error("LostPortRace without \"address already in use\"")
	}
}

func TestProcessSignal(t *testing.T) {
	t.Parallel()
	p := startChild(t, "sleep")
	if p.Exited() || p.Code() != 0 || !p.ExitedAt().IsZero() {
		t.Fatalf("while running: Exited %v, Code %d, ExitedAt %v", p.Exited(), p.Code(), p.ExitedAt())
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.WaitExit(t, 10*time.Second); code != -1 {
		t.Errorf("exit status after SIGTERM = %d, want -1 (ended by a signal)", code)
	}
}

func TestAwait(t *testing.T) {
	t.Parallel()
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		p := startChild(t, "sleep")
		calls := 0
		err := p.Await(10*time.Second, time.Millisecond, func() (bool, string) {
			calls++
			return calls == 3, "not yet"
		})
		if err != nil || calls != 3 {
			t.Errorf("Await = %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("exits first", func(t *testing.T) {
		t.Parallel()
		p := startChild(t, "exit3")
		err := p.Await(10*time.Second, time.Millisecond, func() (bool, string) { return false, "never" })
		if err == nil || !strings.Contains(err.Error(), "exited with status 3") {
			t.Errorf("Await = %v, want the exit reported", err)
		}
	})
}

func TestPollTimesOutWithTheLastExplanation(t *testing.T) {
	t.Parallel()
	n := 0
	err := Poll(30*time.Millisecond, time.Millisecond, func() (bool, string) {
		n++
		return false, "attempt " + strconv.Itoa(n)
	})
	if err == nil || !strings.Contains(err.Error(), "not within 30ms") || n < 2 {
		t.Fatalf("Poll = %v after %d calls", err, n)
	}
	if !strings.HasSuffix(err.Error(), "last: attempt "+strconv.Itoa(n)) {
		t.Errorf("Poll = %v, want the last explanation (call %d)", err, n)
	}
}

func TestStartRetryingRetriesOnlyPortRaces(t *testing.T) {
	t.Parallel()
	var modes []string
	p := StartRetrying(t, "child", func() (*Process, error) {
		mode := "sleep"
		if len(modes) == 0 {
			mode = "port-race"
		}
		modes = append(modes, mode)
		p := startChild(t, mode)
		if mode == "port-race" {
			p.WaitExit(t, 10*time.Second)
			return p, errors.New("exited")
		}
		return p, nil
	})
	if len(modes) != 2 || p.Exited() {
		t.Errorf("attempts %v, exited %v; want a retry after the port race and a running child", modes, p.Exited())
	}
}

func TestLogBufferIsBounded(t *testing.T) {
	t.Parallel()
	var l logBuffer
	for _, n := range []int{maxLog - 10, 20, 5} {
		if got, err := l.Write(make([]byte, n)); got != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, got, err)
		}
	}
	const mark = "\n[output truncated]"
	if s := l.String(); len(s) != maxLog+len(mark) || !strings.HasSuffix(s, mark) {
		t.Errorf("kept %d bytes (marked: %v), want %d and the mark", len(s), strings.HasSuffix(s, mark), maxLog)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	if got := tail("abcdef", 6); got != "abcdef" {
		t.Errorf("tail of a short string = %q", got)
	}
	if got := tail("abcdef", 2); got != "[...]ef" {
		t.Errorf("tail(abcdef, 2) = %q, want [...]ef", got)
	}
}
