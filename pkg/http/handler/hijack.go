package handler

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// DefaultHijackPollInterval is how often HijackTracker.Drain checks the
// in-flight count when PollInterval is not positive.
const DefaultHijackPollInterval = time.Second

// HijackTracker counts every in-flight request that passes through it
// (hijacked or not), so that after http.Server.Shutdown — which does not
// wait for hijacked connections such as websockets — Drain can wait for them.
//
// The zero value is ready to use. A HijackTracker must not be copied after
// first use.
type HijackTracker struct {
	// PollInterval is how often Drain checks the count; values <= 0 mean
	// DefaultHijackPollInterval.
	PollInterval time.Duration

	// Clock drives Drain's polling; nil means the real clock.
	Clock clock.WithTicker

	inFlight atomic.Int64
}

// Handler returns next wrapped so that each request counts as in flight
// from entry until next returns, or panics.
func (t *HijackTracker) Handler(next http.Handler) http.Handler {
	return &trackedHandler{tracker: t, next: next}
}

type trackedHandler struct {
	tracker *HijackTracker
	next    http.Handler
}

func (h *trackedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.tracker.inFlight.Add(1)
	defer h.tracker.inFlight.Add(-1)
	h.next.ServeHTTP(w, r)
}

// InFlight returns the number of requests currently inside the handlers
// returned by Handler.
func (t *HijackTracker) InFlight() int64 {
	return t.inFlight.Load()
}

// Drain waits until no request is in flight. It checks at once and then
// every PollInterval, and returns nil when the count is 0 or ctx.Err() when
// ctx is done first.
func (t *HijackTracker) Drain(ctx context.Context) error {
	if t.inFlight.Load() == 0 {
		return nil
	}
	interval := t.PollInterval
	if interval <= 0 {
		interval = DefaultHijackPollInterval
	}
	clk := t.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	ticker := clk.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C():
			if t.inFlight.Load() == 0 {
				return nil
			}
		}
	}
}
