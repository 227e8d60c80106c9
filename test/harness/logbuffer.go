package harness

import (
	"bytes"
	"sync"
)

// maxLog bounds what a logBuffer keeps, so that a chatty child cannot
// exhaust the test's memory.
const maxLog = 4 << 20

// logBuffer collects a child's stdout or stderr: safe for concurrent use,
// and bounded by maxLog.
type logBuffer struct {
	mu        sync.Mutex
	b         bytes.Buffer
	truncated bool
}

// Write keeps what fits under maxLog and drops the rest, never failing, so
// that the child never blocks on its output.
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

// String returns what was kept, marked when some was dropped.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.truncated {
		return l.b.String() + "\n[output truncated]"
	}
	return l.b.String()
}

// tail returns the last n bytes of s, marked when it cut some.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}
