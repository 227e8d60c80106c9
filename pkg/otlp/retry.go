package otlp

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"k8s.io/utils/clock"
)

// The retry loop of one Export, with the policy of the OpenTelemetry Go
// exporters: exponential backoff starting at InitialInterval, growing by
// 1.5 up to MaxInterval, each wait randomized to [0.5, 1.5] of the
// interval; the collector's own delay (Retry-After, RetryInfo) is waited
// instead when longer. No retry starts after MaxElapsedTime, and none is
// begun that a known delay would push past it. The caller's context ends
// the loop at once. Only errors marked retryable (a *retryableError in the
// chain) are retried.

// retryableError marks a failure worth another attempt, with the delay the
// collector asked for (0 if none).
type retryableError struct {
	err      error
	throttle time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func retryable(err error, throttle time.Duration) error {
	return &retryableError{err: err, throttle: max(throttle, 0)}
}

// retrier runs attempts under a RetryConfig.
type retrier struct {
	cfg   RetryConfig
	clock clock.Clock
	// jitter returns a number in [0, 1); rand.Float64 unless a test sets it.
	jitter func() float64
}

func newRetrier(cfg RetryConfig, clk clock.Clock) *retrier {
	if cfg.InitialInterval <= 0 {
		cfg.InitialInterval = DefaultInitialInterval
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = DefaultMaxInterval
	}
	if cfg.MaxElapsedTime == 0 {
		cfg.MaxElapsedTime = DefaultMaxElapsedTime
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &retrier{cfg: cfg, clock: clk, jitter: rand.Float64}
}

// do runs attempt until it succeeds, fails for good, or time runs out. The
// error returned wraps the last attempt's.
func (r *retrier) do(ctx context.Context, attempt func(context.Context) error) error {
	start := r.clock.Now()
	interval := r.cfg.InitialInterval
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		var re *retryableError
		if !errors.As(err, &re) {
			return err
		}
		if r.cfg.Disabled {
			return re.err
		}
		if ctx.Err() != nil {
			return gaveUp(n, context.Cause(ctx), "", err)
		}
		delay := time.Duration(float64(interval) * (0.5 + r.jitter()))
		delay = max(delay, re.throttle)
		if r.cfg.MaxElapsedTime > 0 && r.clock.Since(start)+delay > r.cfg.MaxElapsedTime {
			return gaveUp(n, nil, "the next retry, in "+delay.String()+", would pass the limit of "+r.cfg.MaxElapsedTime.String(), err)
		}
		if werr := r.wait(ctx, delay); werr != nil {
			return gaveUp(n, werr, "", err)
		}
		interval = min(interval+interval/2, r.cfg.MaxInterval)
	}
}

func (r *retrier) wait(ctx context.Context, d time.Duration) error {
	t := r.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// gaveUpError is the final error of an Export that was retried: it wraps
// the last attempt's error and, when the context ended the retries, the
// context's cause.
type gaveUpError struct {
	attempts int
	cause    error  // the context's, or nil
	why      string // when cause is nil
	last     error
}

func gaveUp(attempts int, cause error, why string, last error) error {
	var re *retryableError
	if errors.As(last, &re) {
		last = re.err
	}
	return &gaveUpError{attempts: attempts, cause: cause, why: why, last: last}
}

func (e *gaveUpError) Error() string {
	why := e.why
	if e.cause != nil {
		why = e.cause.Error()
	}
	return "gave up after " + strconv.Itoa(e.attempts) + " attempt(s) (" + why + "): " + e.last.Error()
}

func (e *gaveUpError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.last}
	}
	return []error{e.last, e.cause}
}
