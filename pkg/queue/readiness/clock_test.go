package readiness

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// manualClock is a timeSource whose time moves only when a test advances
// it, straight to the earliest armed timer. It serves one polling
// goroutine at a time: advance assumes that a goroutine that armed a timer
// waits for it (as check.poll does) and makes no other progress.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	armed  chan struct{} // a token after a timer is armed
}

func newManualClock(now time.Time) *manualClock {
	return &manualClock{now: now, armed: make(chan struct{}, 1)}
}

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

func (m *manualClock) NewTimer(d time.Duration) clock.Timer {
	t := &manualTimer{clk: m, c: make(chan time.Time, 1)}
	m.mu.Lock()
	m.timers = append(m.timers, t)
	m.mu.Unlock()
	t.Reset(d)
	return t
}

// advance waits until a timer is armed or done is closed (false), then
// moves the time to the earliest armed timer's and fires every timer due.
func (m *manualClock) advance(done <-chan struct{}) bool {
	for {
		m.mu.Lock()
		var next *manualTimer
		for _, t := range m.timers {
			if t.on && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next != nil {
			if next.at.After(m.now) {
				m.now = next.at
			}
			for _, t := range m.timers {
				if t.on && !t.at.After(m.now) {
					t.on = false
					select { // empty: Reset drained it, and a firing disarms
					case t.c <- m.now:
					default:
					}
				}
			}
			m.mu.Unlock()
			return true
		}
		m.mu.Unlock()
		select {
		case <-m.armed:
		case <-done:
			return false
		}
	}
}

type manualTimer struct {
	clk *manualClock
	c   chan time.Time
	at  time.Time
	on  bool
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

func (t *manualTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.on
	t.on = false
	return was
}

// Reset arms the timer d from now, dropping a firing not received (as
// time.Timer does since Go 1.23).
func (t *manualTimer) Reset(d time.Duration) bool {
	t.clk.mu.Lock()
	was := t.on
	t.at, t.on = t.clk.now.Add(d), true
	select {
	case <-t.c:
	default:
	}
	t.clk.mu.Unlock()
	select {
	case t.clk.armed <- struct{}{}:
	default:
	}
	return was
}
