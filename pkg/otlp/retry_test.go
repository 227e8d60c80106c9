package otlp

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// skipClock is a fake clock on which every wait ends at once, advancing
// the clock by the wait; it records the waits.
type skipClock struct {
	*clocktesting.FakeClock
	mu    sync.Mutex
	waits []time.Duration
}

func newSkipClock() *skipClock {
	return &skipClock{FakeClock: clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

func (c *skipClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	t := c.FakeClock.NewTimer(d)
	c.Step(d)
	return t
}

func (c *skipClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// stuckClock is a fake clock whose waits never end; each NewTimer is
// announced on waiting.
type stuckClock struct {
	*clocktesting.FakeClock
	waiting chan time.Duration
}

func (c *stuckClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.waiting <- d
	return t
}

var (
	errRetry = errors.New("try again")
	errFinal = errors.New("no")
)

// script returns an attempt function failing with errs in turn, then
// succeeding, and a counter of attempts.
func script(errs ...error) (func(context.Context) error, *int) {
	n := 0
	return func(context.Context) error {
		n++
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}, &n
}

func TestRetrier(t *testing.T) {
	half := func() float64 { return 0.5 } // no randomization
	defaults := RetryConfig{InitialInterval: 5 * time.Second, MaxInterval: 30 * time.Second, MaxElapsedTime: time.Minute}
	tests := []struct {
		name         string
		cfg          RetryConfig
		jitter       func() float64
		errs         []error
		wantAttempts int
		wantWaits    []time.Duration
		wantErr      string
		wantIs       error
	}{
		{name: "success", cfg: defaults, wantAttempts: 1},
		{
			name: "retryable twice", cfg: defaults,
			errs:         []error{retryable(errRetry, 0), retryable(errRetry, 0)},
			wantAttempts: 3, wantWaits: []time.Duration{5 * time.Second, 7500 * time.Millisecond},
		},
		{
			name: "zero config takes the defaults", cfg: RetryConfig{},
			errs:         []error{retryable(errRetry, 0), retryable(errRetry, 0)},
			wantAttempts: 3, wantWaits: []time.Duration{5 * time.Second, 7500 * time.Millisecond},
		},
		{
			name: "final error returned as is", cfg: defaults,
			errs:         []error{retryable(errRetry, 0), errFinal},
			wantAttempts: 2, wantWaits: []time.Duration{5 * time.Second}, wantErr: "no", wantIs: errFinal,
		},
		{
			name: "longer server delay honoured", cfg: defaults,
			errs:         []error{retryable(errRetry, 12*time.Second), retryable(errRetry, time.Second)},
			wantAttempts: 3, wantWaits: []time.Duration{12 * time.Second, 7500 * time.Millisecond},
		},
		{
			name: "server delay past the limit gives up at once", cfg: defaults,
			errs:         []error{retryable(errRetry, 61*time.Second)},
			wantAttempts: 1,
			wantErr:      "gave up after 1 attempt(s) (the next retry, in 1m1s, would pass the limit of 1m0s): try again", wantIs: errRetry,
		},
		{
			name: "max elapsed time", cfg: defaults,
			errs:         []error{retryable(errRetry, 0), retryable(errRetry, 0), retryable(errRetry, 0), retryable(errRetry, 0), retryable(errRetry, 0), retryable(errRetry, 0)},
			wantAttempts: 5,
			wantWaits:    []time.Duration{5 * time.Second, 7500 * time.Millisecond, 11250 * time.Millisecond, 16875 * time.Millisecond},
			wantErr:      "gave up after 5 attempt(s) (the next retry, in 25.3125s, would pass the limit of 1m0s): try again", wantIs: errRetry,
		},
		{
			name: "interval capped", cfg: RetryConfig{InitialInterval: 20 * time.Second, MaxInterval: 25 * time.Second, MaxElapsedTime: -1},
			errs:         []error{retryable(errRetry, 0), retryable(errRetry, 0), retryable(errRetry, 0)},
			wantAttempts: 4, wantWaits: []time.Duration{20 * time.Second, 25 * time.Second, 25 * time.Second},
		},
		{
			name: "randomized low", cfg: defaults, jitter: func() float64 { return 0 },
			errs:         []error{retryable(errRetry, 0), retryable(errRetry, 0)},
			wantAttempts: 3, wantWaits: []time.Duration{2500 * time.Millisecond, 3750 * time.Millisecond},
		},
		{
			name: "randomized high", cfg: defaults, jitter: func() float64 { return 0.999 },
			errs:         []error{retryable(errRetry, 0)},
			wantAttempts: 2, wantWaits: []time.Duration{7495 * time.Millisecond},
		},
		{
			name: "disabled", cfg: RetryConfig{Disabled: true},
			errs:         []error{retryable(errRetry, 0)},
			wantAttempts: 1, wantErr: "try again", wantIs: errRetry,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newSkipClock()
			r := newRetrier(tt.cfg, clk)
			r.jitter = half
			if tt.jitter != nil {
				r.jitter = tt.jitter
			}
			attempt, n := script(tt.errs...)
			err := r.do(context.Background(), attempt)
			if *n != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", *n, tt.wantAttempts)
			}
			if got := clk.Waits(); !reflect.DeepEqual(got, tt.wantWaits) && (len(got) > 0 || len(tt.wantWaits) > 0) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal("do:", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("do error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			var re *retryableError
			if errors.As(err, &re) {
				t.Errorf("final error %v still says retryable", err)
			}
		})
	}
}

func TestRetrierContextEndsWait(t *testing.T) {
	clk := &stuckClock{FakeClock: clocktesting.NewFakeClock(time.Now()), waiting: make(chan time.Duration, 1)}
	r := newRetrier(RetryConfig{}, clk)
	ctx, cancel := context.WithCancel(context.Background())
	attempt, n := script(retryable(errRetry, 0), retryable(errRetry, 0))
	done := make(chan error)
	go func() { done <- r.do(ctx, attempt) }()
	<-clk.waiting
	cancel()
	err := <-done
	if *n != 1 {
		t.Errorf("attempts = %d, want 1", *n)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errRetry) {
		t.Errorf("do error = %v, want context.Canceled and the last error", err)
	}
	if want := "gave up after 1 attempt(s) (context canceled): try again"; err == nil || err.Error() != want {
		t.Errorf("do error = %v, want %q", err, want)
	}
}

func TestRetrierContextEndedDuringAttempt(t *testing.T) {
	r := newRetrier(RetryConfig{}, newSkipClock())
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	n := 0
	err := r.do(ctx, func(context.Context) error {
		n++
		cancel()
		return retryable(errRetry, 0)
	})
	if n != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, errRetry) {
		t.Errorf("attempts = %d, error = %v", n, err)
	}
}
